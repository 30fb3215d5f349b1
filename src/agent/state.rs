//! The agent's live state on disk: which `<vcpupin>`s a running domain lost to a
//! hot-unplug, so that a restarted agent keeps libvirt's rule instead of pinning the
//! returned vCPUs back (and writes nothing that is already right).
//!
//! One file per domain, named by its uuid, holding `domid=N` and `dropped=LIST` (a
//! vCPU list such as `3` or `1,3`); a file of another domid is a former run of the domain
//! and is ignored. Written atomically (a temporary file renamed over it).

use std::io;
use std::path::{Path, PathBuf};

use crate::error::Uuid;
use crate::ids::{DomId, VcpuSet};

/// A directory of live-state files (`/run/xenvcpu/agent` for the command).
#[derive(Debug, Clone)]
pub(super) struct StateDir(PathBuf);

impl StateDir {
    pub(super) fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir(dir.into())
    }

    fn file(&self, uuid: Uuid) -> PathBuf {
        self.0.join(uuid.to_string())
    }

    /// The pins domain `domid` (of this uuid) lost, or nothing when no file is for it.
    pub(super) fn load(&self, uuid: Uuid, domid: DomId) -> io::Result<VcpuSet> {
        let text = match std::fs::read_to_string(self.file(uuid)) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(VcpuSet::new()),
            Err(e) => return Err(e),
        };
        parse(&text, domid).map_err(|what| io::Error::new(io::ErrorKind::InvalidData, what))
    }

    /// Records the pins the domain lost (removes the file when none).
    pub(super) fn save(&self, uuid: Uuid, domid: DomId, dropped: &VcpuSet) -> io::Result<()> {
        if dropped.is_empty() {
            return self.remove(uuid);
        }
        std::fs::create_dir_all(&self.0)?;
        let file = self.file(uuid);
        let tmp = tmp_path(&file);
        std::fs::write(&tmp, format!("domid={domid}\ndropped={dropped}\n"))?;
        std::fs::rename(&tmp, &file)
    }

    /// Forgets the domain.
    pub(super) fn remove(&self, uuid: Uuid) -> io::Result<()> {
        match std::fs::remove_file(self.file(uuid)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn tmp_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    file.with_file_name(name)
}

fn parse(text: &str, domid: DomId) -> Result<VcpuSet, String> {
    let (mut file_domid, mut dropped) = (None, None);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match line.split_once('=') {
            Some(("domid", v)) => file_domid = Some(v.trim().parse::<u32>().map_err(|e| format!("domid: {e}"))?),
            Some(("dropped", v)) => {
                dropped = Some(v.trim().parse::<VcpuSet>().map_err(|e| format!("dropped: {e}"))?);
            }
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    match (file_domid, dropped) {
        (Some(d), Some(set)) if d == domid.get() => Ok(set),
        (Some(_), Some(_)) => Ok(VcpuSet::new()),
        _ => Err("a state file needs domid= and dropped=".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::VcpuId;

    #[test]
    fn a_state_round_trips_and_another_domid_is_a_former_run() {
        let dir = std::env::temp_dir().join(format!("xenvcpu-state-{}", std::process::id()));
        let state = StateDir::new(&dir);
        let uuid = Uuid([7; 16]);
        let dropped = VcpuSet::from_iter([VcpuId(1), VcpuId(3)]);
        state.save(uuid, DomId(5), &dropped).unwrap();
        assert_eq!(state.load(uuid, DomId(5)).unwrap(), dropped);
        assert!(state.load(uuid, DomId(6)).unwrap().is_empty(), "another domid: a former run");
        state.save(uuid, DomId(5), &VcpuSet::new()).unwrap();
        assert!(!state.file(uuid).exists(), "no pins lost: no file");
        std::fs::write(state.file(uuid), "domid=5\ngarbage\n").unwrap();
        assert!(state.load(uuid, DomId(5)).is_err(), "a damaged file is an error, not an empty set");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
