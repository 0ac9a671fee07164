//! What the child does between `fork` and `exec`. Only raw system calls (rustix) run
//! here: no allocation, no locks, nothing that is unsafe after a fork of a threaded
//! process.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::process::{Resource, Rlimit, setrlimit};
use rustix::thread::UnshareFlags;

use crate::{Limits, NOBODY};

pub(crate) struct Plan {
    pub limits: Limits,
    pub drop_to_nobody: bool,
    pub network_namespace: bool,
    /// The Landlock ruleset to enter last ([`crate::fence`]), open in the parent.
    pub landlock: Option<RawFd>,
}

fn limit(resource: Resource, value: u64) -> io::Result<()> {
    setrlimit(
        resource,
        Rlimit {
            current: Some(value),
            maximum: Some(value),
        },
    )
    .map_err(io::Error::from)
}

fn to_nobody() -> io::Result<()> {
    use rustix::process::{Gid, Uid};
    rustix::thread::set_thread_groups(&[])?;
    let gid = Gid::from_raw(NOBODY);
    rustix::thread::set_thread_res_gid(gid, gid, gid)?;
    let uid = Uid::from_raw(NOBODY);
    rustix::thread::set_thread_res_uid(uid, uid, uid)?;
    Ok(())
}

fn new_network() -> io::Result<()> {
    // SAFETY: no FILES flag, so no thread can observe an unshared descriptor table; the
    // child is single-threaded after fork anyway.
    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNET) }
        .map_err(io::Error::from)
}

/// `landlock_restrict_self(fd, 0)`: needs `no_new_privs` (or `CAP_SYS_ADMIN`) first.
fn restrict(fd: RawFd) -> io::Result<()> {
    // SAFETY: a raw system call on a descriptor the parent keeps open until the spawn
    // returns; errno is read without allocating.
    let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub(crate) fn install(cmd: &mut Command, plan: Plan) {
    let l = plan.limits;
    let hook = move || -> io::Result<()> {
        rustix::process::setsid()?;
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
        // CPU: SIGXCPU at the limit, SIGKILL a second later.
        setrlimit(
            Resource::Cpu,
            Rlimit {
                current: Some(l.cpu_secs),
                maximum: Some(l.cpu_secs + 1),
            },
        )?;
        limit(Resource::As, l.memory_bytes)?;
        limit(Resource::Fsize, l.max_file_bytes)?;
        limit(Resource::Core, 0)?;
        limit(Resource::Nofile, 256)?;
        if plan.drop_to_nobody {
            to_nobody()?;
        }
        if plan.network_namespace {
            new_network()?;
        }
        // After unshare, so the count is this namespace's own (kernel >= 5.14 counts
        // RLIMIT_NPROC per user namespace) and the namespace's ceiling is the host's.
        limit(Resource::Nproc, l.max_processes)?;
        rustix::thread::set_no_new_privs(true)?;
        if let Some(fd) = plan.landlock {
            restrict(fd)?;
        }
        Ok(())
    };
    // SAFETY: the hook makes system calls only (see the module comment).
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// The probe of [`crate::probe_network`]: the same identity change and unshare, nothing else.
pub(crate) fn install_probe(cmd: &mut Command, drop_to_nobody: bool) {
    let hook = move || -> io::Result<()> {
        if drop_to_nobody {
            to_nobody()?;
        }
        new_network()
    };
    // SAFETY: system calls only.
    unsafe {
        cmd.pre_exec(hook);
    }
}
