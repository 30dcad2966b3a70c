//! Who may do what to an environment: a pure function of the caller's global
//! role and their role among the environment's members.

use berth_core::account::{Email, Role};
use berth_core::environment::{Member, MemberRole};

/// What a caller is to one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Member(MemberRole),
    /// An admin who is not a member: sees and manages, has no tenant identity.
    Admin,
    /// Neither: the environment does not exist for them.
    Stranger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Change apps and the description.
    EditApps,
    /// Change quota, limits, network, pod security, TTL or template.
    EditSettings,
    ManageMembers,
    Delete,
    Renew,
    /// Download a kubeconfig: only members have a ServiceAccount.
    Kubeconfig,
}

pub fn standing(members: &[Member], email: &Email, role: Role) -> Standing {
    match members.iter().find(|m| &m.email == email) {
        Some(member) => Standing::Member(member.role),
        None if role == Role::Admin => Standing::Admin,
        None => Standing::Stranger,
    }
}

impl Standing {
    pub fn can_see(self) -> bool {
        self != Standing::Stranger
    }

    pub fn allows(self, permission: Permission) -> bool {
        use MemberRole::{Editor, Owner, Viewer};
        use Permission::*;
        match self {
            Standing::Stranger => false,
            Standing::Member(Owner) => true,
            Standing::Admin => permission != Kubeconfig,
            Standing::Member(Editor) => matches!(permission, EditApps | Renew | Kubeconfig),
            Standing::Member(Viewer) => permission == Kubeconfig,
        }
    }

    /// The caller's role as the API reports it.
    pub fn label(self) -> &'static str {
        match self {
            Standing::Member(MemberRole::Owner) => "owner",
            Standing::Member(MemberRole::Editor) => "editor",
            Standing::Member(MemberRole::Viewer) => "viewer",
            Standing::Admin => "admin",
            Standing::Stranger => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    const ALL: [Permission; 6] = [
        EditApps,
        EditSettings,
        ManageMembers,
        Delete,
        Renew,
        Kubeconfig,
    ];

    fn allowed(standing: Standing) -> Vec<Permission> {
        ALL.into_iter().filter(|p| standing.allows(*p)).collect()
    }

    #[test]
    fn the_role_table() {
        assert!(Standing::Member(MemberRole::Viewer).can_see() && !Standing::Stranger.can_see());
        assert_eq!(allowed(Standing::Member(MemberRole::Owner)), ALL);
        assert_eq!(
            allowed(Standing::Member(MemberRole::Editor)),
            [EditApps, Renew, Kubeconfig]
        );
        assert_eq!(allowed(Standing::Member(MemberRole::Viewer)), [Kubeconfig]);
        assert_eq!(
            allowed(Standing::Admin),
            [EditApps, EditSettings, ManageMembers, Delete, Renew]
        );
        assert_eq!(allowed(Standing::Stranger), []);
    }

    #[test]
    fn membership_wins_over_the_global_role() {
        let ann = Email::parse("email", "ann@example.com").unwrap();
        let members = vec![Member {
            email: ann.clone(),
            role: MemberRole::Viewer,
        }];
        assert_eq!(
            standing(&members, &ann, Role::Admin),
            Standing::Member(MemberRole::Viewer)
        );
        let bob = Email::parse("email", "bob@example.com").unwrap();
        assert_eq!(standing(&members, &bob, Role::Admin), Standing::Admin);
        assert_eq!(standing(&members, &bob, Role::Member), Standing::Stranger);
    }
}
