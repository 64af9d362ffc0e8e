-- Which projects each project group holds (the groups themselves are administration
-- objects of kind `project_group`). A project may be in several groups.
CREATE TABLE project_group_projects (
    group_id UUID NOT NULL,
    project_id UUID NOT NULL REFERENCES projects (id),
    org_id UUID NOT NULL REFERENCES orgs (id),
    created BIGINT NOT NULL,
    PRIMARY KEY (group_id, project_id)
);
CREATE INDEX project_group_projects_project ON project_group_projects (project_id);
