//! Every xenstore path xenvcpu reads or writes, built in one place, and the name ↔ id
//! lookup of domains (as `xl` does it: through `/local/domain/<domid>/name`).
//!
//! | path | what |
//! |---|---|
//! | `/local/domain` | one child per domain id |
//! | `/local/domain/<domid>/name` | the domain's name |
//! | `/local/domain/<domid>/cpu` | the vCPU availability directory (libxl writes it for every domain it builds) |
//! | `/local/domain/<domid>/cpu/<n>/availability` | `online` or `offline`: what the toolstack asks of the guest |
//! | `/local/domain/<domid>/image/device-model-pid` | the pid of the domain's device model in dom0 (HVM) |

use super::{TxId, XenStore, XsError};

/// The directory of all domains.
pub const DOMAINS: &str = "/local/domain";

/// `/local/domain/<domid>`.
pub fn domain(domid: u32) -> String {
    format!("{DOMAINS}/{domid}")
}

/// `/local/domain/<domid>/name`.
pub fn name(domid: u32) -> String {
    format!("{DOMAINS}/{domid}/name")
}

/// `/local/domain/<domid>/cpu`: the availability directory.
pub fn cpu_dir(domid: u32) -> String {
    format!("{DOMAINS}/{domid}/cpu")
}

/// `/local/domain/<domid>/cpu/<vcpu>/availability`.
pub fn availability(domid: u32, vcpu: u32) -> String {
    format!("{DOMAINS}/{domid}/cpu/{vcpu}/availability")
}

/// `/local/domain/<domid>/image/device-model-pid`.
pub fn device_model_pid(domid: u32) -> String {
    format!("{DOMAINS}/{domid}/image/device-model-pid")
}

/// The name of a domain, if it has one.
///
/// # Errors
/// A failed xenstore read other than a missing node.
pub fn read_name(store: &dyn XenStore, domid: u32) -> Result<Option<String>, XsError> {
    match store.read_string(TxId::NONE, &name(domid)) {
        Ok(name) => Ok(Some(name)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The id of the domain named `name`, found as xl does: by reading every
/// `/local/domain/<id>/name`; `None` when no domain has that name.
///
/// # Errors
/// A failed xenstore read other than a missing node.
pub fn find_name(store: &dyn XenStore, wanted: &str) -> Result<Option<u32>, XsError> {
    let ids = match store.directory(TxId::NONE, DOMAINS) {
        Ok(ids) => ids,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e),
    };
    for id in ids.iter().filter_map(|id| id.parse::<u32>().ok()) {
        if read_name(store, id)?.as_deref() == Some(wanted) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_libxls() {
        assert_eq!(domain(7), "/local/domain/7");
        assert_eq!(name(7), "/local/domain/7/name");
        assert_eq!(cpu_dir(7), "/local/domain/7/cpu");
        assert_eq!(availability(7, 3), "/local/domain/7/cpu/3/availability");
        assert_eq!(device_model_pid(7), "/local/domain/7/image/device-model-pid");
    }
}
