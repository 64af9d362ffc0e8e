//! Objects named by path in a configuration document: `organization`,
//! `group/Engineers`, `project/web`, `project/web/experiment/baseline`. A `/` or `\`
//! inside a name is written `\/` or `\\`.

use castellan_core::{Name, ObjectType};
use std::fmt;

/// One object of an organization's tree, by names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    /// The organization itself or one of its nouns (`org_project`, …).
    Org(ObjectType),
    /// An object of the organization by name: a group, a role, a project group (or
    /// all its projects), an AI secret, a project (or its logs).
    Named(ObjectType, String),
    /// An object inside a project, by name (prompts: by slug).
    Inner(String, ObjectType, String),
}

/// The object types a path names by one name.
const NAMED: [ObjectType; 7] = [
    ObjectType::Group,
    ObjectType::Role,
    ObjectType::ProjectGroup,
    ObjectType::ProjectGroupProjects,
    ObjectType::AiSecret,
    ObjectType::Project,
    ObjectType::ProjectLog,
];

/// The object types inside a project.
const INNER: [ObjectType; 4] =
    [ObjectType::Experiment, ObjectType::Dataset, ObjectType::Prompt, ObjectType::PromptSession];

impl Path {
    /// The type of the object it names.
    pub fn object_type(&self) -> ObjectType {
        match self {
            Path::Org(t) | Path::Named(t, _) | Path::Inner(_, t, _) => *t,
        }
    }

    /// The project it names or lies in, if any.
    pub fn project(&self) -> Option<&str> {
        match self {
            Path::Named(ObjectType::Project | ObjectType::ProjectLog, p) | Path::Inner(p, _, _) => Some(p),
            _ => None,
        }
    }

    /// Parses a path; the error says what is wrong and which forms exist.
    pub fn parse(s: &str) -> Result<Path, String> {
        let segments = split(s)?;
        let ty = |t: &str| t.parse::<ObjectType>().map_err(|e| e.to_string());
        let name = |n: &str| Name::parse("a name in a path", n).map(Name::into_inner).map_err(|e| e.to_string());
        let path = match segments.as_slice() {
            [t] => {
                let t = ty(t)?;
                if !t.is_org_noun() {
                    return Err(format!("`{t}` needs a name: `{t}/NAME`"));
                }
                Path::Org(t)
            }
            [t, n] => {
                let t = ty(t)?;
                if !NAMED.contains(&t) {
                    return Err(format!("`{t}` is not named this way; {}", FORMS));
                }
                Path::Named(t, name(n)?)
            }
            [p, project, t, n] if p == "project" => {
                let t = ty(t)?;
                if !INNER.contains(&t) {
                    return Err(format!("`{t}` does not live inside a project; {}", FORMS));
                }
                Path::Inner(name(project)?, t, name(n)?)
            }
            _ => return Err(format!("`{s}` is not an object path; {FORMS}")),
        };
        Ok(path)
    }
}

const FORMS: &str = "paths are `organization`, an org noun such as `org_project`, `TYPE/NAME` for a group, role, \
                     project_group, project_group_projects, ai_secret, project or project_log, or \
                     `project/NAME/TYPE/NAME` for an experiment, dataset, prompt (by slug) or prompt_session";

fn split(s: &str) -> Result<Vec<String>, String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | '/')) => out.last_mut().map(|l| l.push(e)).unwrap_or_default(),
                _ => return Err(format!("`{s}`: `\\` must be followed by `/` or `\\`")),
            },
            '/' => out.push(String::new()),
            c => out.last_mut().map(|l| l.push(c)).unwrap_or_default(),
        }
    }
    Ok(out)
}

fn escape(name: &str) -> String {
    name.replace('\\', "\\\\").replace('/', "\\/")
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Org(t) => write!(f, "{t}"),
            Path::Named(t, n) => write!(f, "{t}/{}", escape(n)),
            Path::Inner(p, t, n) => write!(f, "project/{}/{t}/{}", escape(p), escape(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_as_they_parse_even_with_slashes_in_names() {
        for s in [
            "organization",
            "org_project",
            "group/Engineers",
            "project/web",
            "project_log/a\\/b",
            "project/web/experiment/base\\\\line",
            "project/x\\/y/prompt/my-slug",
        ] {
            let p = Path::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            Path::parse("project/a\\/b/dataset/d"),
            Ok(Path::Inner("a/b".into(), ObjectType::Dataset, "d".into()))
        );
    }

    #[test]
    fn malformed_paths_say_what_is_wrong() {
        for (s, want) in [
            ("group", "needs a name"),
            ("experiment/x", "not named this way"),
            ("project/p/project/q", "does not live inside a project"),
            ("organisation", "unknown object type"),
            ("project/p/experiment", "not an object path"),
            ("group/a\\b", "must be followed by"),
            ("group/ ", "must not be empty"),
        ] {
            let e = Path::parse(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
        }
    }
}
