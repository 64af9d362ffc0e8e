-- Which projects each project group holds (the groups themselves are administration
-- objects of kind `project_group`). A project may be in several groups.
CREATE TABLE project_group_projects (
    group_id BLOB NOT NULL,
    project_id BLOB NOT NULL REFERENCES projects (id),
    org_id BLOB NOT NULL REFERENCES orgs (id),
    created INTEGER NOT NULL,
    PRIMARY KEY (group_id, project_id)
);
CREATE INDEX project_group_projects_project ON project_group_projects (project_id);
