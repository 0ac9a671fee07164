//! The Landlock fence of a run: built in the parent (the `landlock` crate allocates, so
//! it cannot run between `fork` and `exec`), entered by the child with one raw system
//! call ([`crate::child`]).
//!
//! What the ruleset allows, everything else it handles being denied:
//! - the whole filesystem read-only (read files, list folders, execute): the interpreter,
//!   its standard library and the system's libraries;
//! - every filesystem right inside the run's private folder;
//! - reading and writing `/dev/null`;
//! - no TCP `bind` or `connect` at all (ABI 4 and later): a second wall beside the
//!   network namespace, and the only one where no namespace can be made;
//! - no signals to processes outside the run, and no connection to abstract UNIX sockets
//!   made outside it (ABI 6 and later): a program running as the caller's own user cannot
//!   kill stepwise.
//!
//! The rights are those of the kernel's ABI as probed, capped at ABI 6 (the rights this
//! module was written and tested against).

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::OnceLock;

use landlock::{
    ABI, Access, AccessFs, AccessNet, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope,
};

/// The kernel's Landlock ABI version, or why there is none (probed once per process,
/// the first failure logged loudly).
pub(crate) fn kernel_abi() -> &'static Result<u32, String> {
    static ABI_VERSION: OnceLock<Result<u32, String>> = OnceLock::new();
    ABI_VERSION.get_or_init(|| {
        // landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
        // SAFETY: with a null attribute and size 0 the call only reads its flags.
        let v = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<u8>(),
                0usize,
                1u32,
            )
        };
        let result = if v >= 1 {
            Ok(v as u32)
        } else {
            Err(format!(
                "the kernel has no Landlock ({})",
                std::io::Error::last_os_error()
            ))
        };
        if let Err(why) = &result {
            tracing::warn!(
                "SANDBOX FILESYSTEM NOT FENCED: {why}; model-written code can write \
                 wherever its user can"
            );
        }
        result
    })
}

fn vetted(abi: u32) -> ABI {
    match abi {
        1 => ABI::V1,
        2 => ABI::V2,
        3 => ABI::V3,
        4 => ABI::V4,
        5 => ABI::V5,
        _ => ABI::V6,
    }
}

/// The ruleset of one run whose private folder is `folder`, as the file descriptor the
/// child restricts itself with.
pub(crate) fn ruleset(abi: u32, folder: &Path) -> Result<OwnedFd, String> {
    let abi = vetted(abi);
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("landlock {what}: {e}");
    let read = AccessFs::from_read(abi);
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| fail("filesystem rights", &e))?;
    if abi >= ABI::V4 {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(|e| fail("network rights", &e))?;
    }
    if abi >= ABI::V6 {
        ruleset = ruleset
            .scope(Scope::from_all(abi))
            .map_err(|e| fail("scopes", &e))?;
    }
    let open = |p: &Path| PathFd::new(p).map_err(|e| fail(&format!("open {}", p.display()), &e));
    let created = ruleset
        .create()
        .map_err(|e| fail("create", &e))?
        .add_rule(PathBeneath::new(open(Path::new("/"))?, read))
        .map_err(|e| fail("rule for /", &e))?
        .add_rule(PathBeneath::new(open(folder)?, AccessFs::from_all(abi)))
        .map_err(|e| fail("rule for the private folder", &e))?
        .add_rule(PathBeneath::new(
            open(Path::new("/dev/null"))?,
            AccessFs::ReadFile | AccessFs::WriteFile,
        ))
        .map_err(|e| fail("rule for /dev/null", &e))?;
    let fd: Option<OwnedFd> = created.into();
    fd.ok_or_else(|| "landlock: the kernel made no ruleset".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_versions_past_the_vetted_one_use_its_rights() {
        assert_eq!(vetted(1), ABI::V1);
        assert_eq!(vetted(4), ABI::V4);
        assert_eq!(vetted(6), ABI::V6);
        assert_eq!(vetted(9), ABI::V6);
    }

    #[test]
    fn a_ruleset_is_made_where_the_kernel_has_landlock() {
        let Ok(abi) = kernel_abi() else {
            println!("SKIPPED: no Landlock on this kernel");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        assert!(ruleset(*abi, dir.path()).is_ok());
        assert!(ruleset(*abi, &dir.path().join("absent")).is_err());
    }
}
