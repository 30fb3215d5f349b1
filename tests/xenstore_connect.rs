//! Connecting to a xenstored socket that accepts nothing (a stopped or wedged daemon whose
//! listen queue is full) fails within the timeout, instead of blocking for ever.

use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use xenvcpu::xenstore::{XsClient, XsError};

#[test]
fn connecting_to_a_socket_that_accepts_nothing_times_out_and_stops_the_search() {
    let dir = std::env::temp_dir().join(format!("xenvcpu-connect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("socket");
    let listener = UnixListener::bind(&path).unwrap();
    // Backlog 0, as full as xenstored's (backlog 1) gets once two clients wait: one
    // connection is queued, the next finds the queue full.
    // SAFETY: listen(2) again on our own listening socket only changes its backlog.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let timeout = Duration::from_millis(300);
    let first =
        XsClient::open_any_timeout(std::slice::from_ref(&path), timeout).expect("the first connection is queued");
    assert_eq!(first.timeout(), timeout, "the reply timeout is the one given");
    let never_tried = PathBuf::from("/nonexistent/xenbus");
    let start = Instant::now();
    let err = XsClient::open_any_timeout(&[path.clone(), never_tried], timeout).unwrap_err();
    let took = start.elapsed();
    assert!(took >= timeout && took < Duration::from_secs(5), "gave up after {took:?}");
    match &err {
        XsError::Connect { attempts } => {
            assert_eq!(attempts.len(), 1, "the search stops at the socket that timed out: {err}");
            assert_eq!(attempts[0].path, path);
            assert_eq!(attempts[0].error.kind(), std::io::ErrorKind::TimedOut, "{err}");
        }
        e => panic!("{e}"),
    }
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("accepted no connection"), "{err}");
    drop(first);
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}
