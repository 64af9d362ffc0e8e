//! Typed ids. Every id is a UUID on the wire; the newtype keeps an org id from being
//! passed where a project id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7).
            pub fn generate() -> Self {
                $name(Uuid::now_v7())
            }
            /// The underlying UUID.
            pub const fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                $name(u)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

id_type!(
    /// An organization.
    OrgId
);
id_type!(
    /// A user or service account.
    UserId
);
id_type!(
    /// A project.
    ProjectId
);
id_type!(
    /// An API key or a service token.
    KeyId
);
id_type!(
    /// A permission group.
    GroupId
);
id_type!(
    /// A role.
    RoleId
);
id_type!(
    /// An ACL row.
    AclId
);
