//! [`XsClient`]: the xenstored wire protocol over the Unix socket or the xenbus device.
//!
//! One connection serves every thread. A request registers its request id, is written
//! whole under the writer lock, and its thread then waits (bounded by the client's
//! timeout) for the reply with that id. A reader thread owns the read side: it dispatches
//! each reply to the waiting request by id — replies may come in any order — and queues
//! the unsolicited `XS_WATCH_EVENT` messages for [`XenStore::next_event`]. When the
//! connection breaks, every waiting and later request fails with
//! [`XsError::Disconnected`].

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::wire::{self, Message, MsgType, Request, PAYLOAD_MAX};
use super::{
    check_path, check_size, check_token, is_at_or_below, ConnectAttempt, TxId, WatchEvent, XenStore, XsErrno, XsError,
    XsOp,
};

/// How long a request waits for its reply unless [`XsClient::set_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often `directory` restarts an `XS_DIRECTORY_PART` walk because the child list
/// changed underneath it, before giving up with `EAGAIN`.
const DIRECTORY_PART_RESTARTS: usize = 8;

/// The endpoints [`XsClient::open`] tries, in order: `$XENSTORED_PATH` (when set and not
/// empty), `/run/xenstored/socket`, `/var/run/xenstored/socket`, then the xenbus device
/// `/dev/xen/xenbus` and its older name `/proc/xen/xenbus` (used when xenstored runs in a
/// stub domain). `$XENSTORED_PATH` is ignored in a set-user-ID (`AT_SECURE`) process, with a
/// warning through the log hook ([`xen_sys::secure_env_var`]).
pub fn default_endpoints() -> Vec<PathBuf> {
    let mut endpoints = Vec::new();
    if let Some(path) = xen_sys::secure_env_var("XENSTORED_PATH").filter(|p| !p.is_empty()) {
        endpoints.push(PathBuf::from(path));
    }
    for path in ["/run/xenstored/socket", "/var/run/xenstored/socket", "/dev/xen/xenbus", "/proc/xen/xenbus"] {
        endpoints.push(PathBuf::from(path));
    }
    endpoints
}

/// How often a connect to a socket whose listen queue is full is retried.
const CONNECT_RETRY: Duration = Duration::from_millis(20);

/// Connects to the Unix socket at `path`, giving up after `timeout`.
///
/// `UnixStream::connect` blocks while the listener's queue is full, which is the case as
/// soon as a few clients have connected to a stopped or wedged xenstored (it listens
/// with a backlog of 1 and accepts nothing). A non-blocking connect fails with `EAGAIN`
/// instead; it is retried until `timeout`, then reported as
/// [`io::ErrorKind::TimedOut`].
fn connect_socket(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::{FromRawFd, OwnedFd};

    // SAFETY: sockaddr_un is plain C data; all-zero is a valid (empty) address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "socket path too long or with a NUL byte"));
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a socket we just created and own; OwnedFd closes it on every path.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let deadline = Instant::now() + timeout;
    loop {
        use std::os::unix::io::AsRawFd;
        // SAFETY: `addr` is a valid sockaddr_un of which `len` bytes are used.
        let rc = unsafe { libc::connect(fd.as_raw_fd(), std::ptr::addr_of!(addr).cast(), len) };
        if rc == 0 {
            break;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) if Instant::now() < deadline => thread::sleep(CONNECT_RETRY),
            Some(libc::EAGAIN) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the socket accepted no connection within {timeout:?} (its listen queue is full: \
                         xenstored is stopped or wedged)"
                    ),
                ))
            }
            _ => return Err(err),
        }
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// The connection: a socket, or the xenbus device file (same framing).
#[derive(Debug)]
enum Conn {
    Socket(UnixStream),
    Device(File),
}

impl Conn {
    fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Socket(s) => Conn::Socket(s.try_clone()?),
            Conn::Device(f) => Conn::Device(f.try_clone()?),
        })
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Socket(s) => s.read(buf),
            Conn::Device(f) => f.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Socket(s) => s.write(buf),
            Conn::Device(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Socket(s) => s.flush(),
            Conn::Device(f) => f.flush(),
        }
    }
}

/// State shared with the reader thread.
#[derive(Debug, Default)]
struct State {
    /// Requests waiting for their reply, by request id; `Some` once it arrived.
    pending: HashMap<u32, Option<Message>>,
    /// Watch events not yet taken by `next_event`.
    events: VecDeque<WatchEvent>,
    /// Why the connection ended, once it has.
    closed: Option<String>,
    /// The client is being dropped: the reader thread should just exit.
    closing: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a reply or event arrives or the connection ends.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on `changed` until `deadline` (`None`: no deadline); returns the guard.
    fn wait<'a>(&self, guard: MutexGuard<'a, State>, deadline: Option<Instant>) -> MutexGuard<'a, State> {
        match deadline {
            None => self.changed.wait(guard).unwrap_or_else(|e| e.into_inner()),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                self.changed.wait_timeout(guard, left).unwrap_or_else(|e| e.into_inner()).0
            }
        }
    }

    /// Records that the connection ended (the first reason wins) and wakes everyone.
    fn close(&self, reason: String) {
        self.lock().closed.get_or_insert(reason);
        self.changed.notify_all();
    }
}

/// A connection to xenstored speaking the wire protocol natively.
///
/// Cheap to share: every method takes `&self`, and requests from several threads are in
/// flight at once on the one connection. See the [module docs](super) for the rules both
/// backends share.
///
/// A request registers its request id, is written whole under the writer lock, and its
/// thread then waits (bounded by [`XsClient::timeout`]) for the reply with that id. A
/// reader thread owns the read side: it hands each reply to the request with its id —
/// replies may come in any order — and queues the unsolicited `XS_WATCH_EVENT` messages
/// for [`XenStore::next_event`], so events arriving while a request waits are never lost.
/// When the connection breaks, every waiting and later request fails with
/// [`XsError::Disconnected`].
///
/// Dropping the client closes the connection; xenstored then removes its watches and
/// aborts its open transactions.
pub struct XsClient {
    shared: Arc<Shared>,
    writer: Mutex<Conn>,
    next_req_id: AtomicU32,
    timeout: Duration,
    endpoint: PathBuf,
    /// Connected through the xenbus device rather than the socket.
    device: bool,
    reader: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for XsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XsClient")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl XsClient {
    /// Connects to the first endpoint of [`default_endpoints`] that accepts.
    ///
    /// # Errors
    /// [`XsError::Connect`] listing every endpoint tried with its error.
    pub fn open() -> Result<Self, XsError> {
        Self::open_any(&default_endpoints())
    }

    /// Connects to the first of `endpoints` that accepts.
    ///
    /// # Errors
    /// [`XsError::Connect`] listing every endpoint tried with its error.
    pub fn open_any(endpoints: &[PathBuf]) -> Result<Self, XsError> {
        Self::open_any_timeout(endpoints, DEFAULT_TIMEOUT)
    }

    /// Connects to the first of `endpoints` that accepts, waiting at most `timeout` for a
    /// socket to accept the connection, and sets `timeout` as the reply timeout (see
    /// [`set_timeout`](Self::set_timeout)).
    ///
    /// A socket that exists but accepts nothing within `timeout` (xenstored stopped or
    /// wedged: its listen queue is full, where a plain `connect` would block for ever)
    /// ends the search with [`io::ErrorKind::TimedOut`]: the endpoints after it lead to
    /// the same daemon.
    ///
    /// # Errors
    /// [`XsError::Connect`] listing every endpoint tried with its error.
    pub fn open_any_timeout(endpoints: &[PathBuf], timeout: Duration) -> Result<Self, XsError> {
        let mut attempts = Vec::new();
        for path in endpoints {
            match Self::connect(path, timeout) {
                Ok(mut client) => {
                    client.set_timeout(timeout);
                    return Ok(client);
                }
                Err(error) => {
                    let stop = error.kind() == io::ErrorKind::TimedOut;
                    attempts.push(ConnectAttempt { path: path.clone(), error });
                    if stop {
                        break;
                    }
                }
            }
        }
        Err(XsError::Connect { attempts })
    }

    /// Connects to one endpoint: a Unix socket is connected to, anything else (the
    /// xenbus device) is opened read/write.
    ///
    /// # Errors
    /// [`XsError::Connect`] with that one endpoint and its error.
    pub fn open_path(path: impl AsRef<Path>) -> Result<Self, XsError> {
        let path = path.as_ref();
        Self::connect(path, DEFAULT_TIMEOUT)
            .map_err(|error| XsError::Connect { attempts: vec![ConnectAttempt { path: path.to_owned(), error }] })
    }

    /// Connects to one endpoint; a socket must accept within `timeout`.
    fn connect(path: &Path, timeout: Duration) -> io::Result<Self> {
        let conn = if fs::metadata(path)?.file_type().is_socket() {
            let stream = connect_socket(path, timeout)?;
            stream.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
            Conn::Socket(stream)
        } else {
            Conn::Device(OpenOptions::new().read(true).write(true).open(path)?)
        };
        let device = matches!(conn, Conn::Device(_));
        let read_side = conn.try_clone()?;
        let shared = Arc::new(Shared::default());
        let reader = {
            let shared = Arc::clone(&shared);
            thread::Builder::new().name("xenstore-reader".into()).spawn(move || read_loop(read_side, &shared))?
        };
        Ok(XsClient {
            shared,
            writer: Mutex::new(conn),
            next_req_id: AtomicU32::new(1),
            timeout: DEFAULT_TIMEOUT,
            device,
            endpoint: path.to_owned(),
            reader: Some(reader),
        })
    }

    /// The largest request payload this connection accepts: [`PAYLOAD_MAX`] on the socket,
    /// 16 bytes less on the xenbus device (the kernel's 4096-byte buffer holds the header
    /// too).
    pub fn payload_max(&self) -> usize {
        if self.device {
            PAYLOAD_MAX - wire::HEADER_LEN
        } else {
            PAYLOAD_MAX
        }
    }

    /// The socket or device this client is connected to.
    pub fn endpoint(&self) -> &Path {
        &self.endpoint
    }

    /// How long a request waits for its reply.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets how long a request waits for its reply (default [`DEFAULT_TIMEOUT`]); also
    /// bounds how long writing a request may block. A request that times out fails with
    /// [`XsError::Timeout`]; its reply, should it come later, is discarded.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        if let Conn::Socket(s) = &*self.writer.get_mut().unwrap_or_else(|e| e.into_inner()) {
            // A zero timeout is refused by the OS; it means "don't block" here anyway.
            let _ = s.set_write_timeout(Some(timeout.max(Duration::from_millis(1))));
        }
    }

    fn fresh_req_id(&self) -> u32 {
        loop {
            let id = self.next_req_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
        }
    }

    /// Sends `request` and waits for its reply; returns the reply payload, or the typed
    /// error of an `XS_ERROR` reply.
    fn call(&self, op: XsOp, path: Option<&str>, tx: TxId, request: Request) -> Result<Vec<u8>, XsError> {
        check_size(op, path, &request, self.payload_max())?;
        let owned_path = || path.map(str::to_owned);
        let req_id = self.fresh_req_id();
        {
            let mut state = self.shared.lock();
            if let Some(reason) = &state.closed {
                return Err(XsError::Disconnected { op, path: owned_path(), reason: reason.clone() });
            }
            state.pending.insert(req_id, None);
        }

        let bytes = request.encode(req_id, tx.0);
        let written = {
            let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            writer.write_all(&bytes).and_then(|()| writer.flush())
        };
        if let Err(source) = written {
            self.shared.lock().pending.remove(&req_id);
            // On a socket part of the message may have gone out, so the framing can't be
            // trusted any more. The xenbus device takes a message in one write() and
            // discards it whole when it refuses it: the connection stays usable.
            if !self.device {
                self.shared.close(format!("writing a {} request failed: {source}", op.wire_name()));
                self.shutdown_socket();
            }
            return Err(XsError::Io { op, path: owned_path(), source });
        }

        let deadline = Instant::now().checked_add(self.timeout);
        let mut state = self.shared.lock();
        let reply = loop {
            if let Some(reply) = state.pending.get_mut(&req_id).and_then(Option::take) {
                state.pending.remove(&req_id);
                break reply;
            }
            if let Some(reason) = &state.closed {
                let reason = reason.clone();
                state.pending.remove(&req_id);
                return Err(XsError::Disconnected { op, path: owned_path(), reason });
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                state.pending.remove(&req_id);
                return Err(XsError::Timeout { op, path: owned_path(), after: self.timeout });
            }
            state = self.shared.wait(state, deadline);
        };
        drop(state);

        let ty = reply.header.ty;
        if ty == MsgType::Error.raw() {
            let errno = wire::parse_error(&reply.payload).map_err(|detail| XsError::Protocol {
                op,
                path: owned_path(),
                detail,
            })?;
            return Err(XsError::refused(op, path, errno));
        }
        if ty != request.ty.raw() {
            return Err(XsError::Protocol {
                op,
                path: owned_path(),
                detail: format!("a {} request got a {} reply", wire::type_name(request.ty.raw()), wire::type_name(ty)),
            });
        }
        Ok(reply.payload)
    }

    /// [`XsClient::call`] for requests whose reply is `OK`.
    fn call_ok(&self, op: XsOp, path: Option<&str>, tx: TxId, request: Request) -> Result<(), XsError> {
        let payload = self.call(op, path, tx, request)?;
        wire::parse_ok(&payload).map_err(|detail| protocol(op, path, detail))
    }

    /// Lists a long directory with `XS_DIRECTORY_PART`, restarting when the child list
    /// changes between slices (its generation differs).
    fn directory_parts(&self, tx: TxId, path: &str) -> Result<Vec<String>, XsError> {
        let op = XsOp::Directory;
        for _ in 0..DIRECTORY_PART_RESTARTS {
            let mut names = Vec::new();
            let mut offset = 0;
            let mut generation: Option<String> = None;
            let complete = loop {
                let payload = self.call(op, Some(path), tx, Request::directory_part(path, offset))?;
                let part = wire::parse_directory_part(&payload).map_err(|detail| protocol(op, Some(path), detail))?;
                match &generation {
                    Some(first) if *first != part.generation => break false,
                    Some(_) => {}
                    None => generation = Some(part.generation.clone()),
                }
                names.extend(part.names);
                offset += part.bytes;
                if part.complete {
                    break true;
                }
            };
            if complete {
                return Ok(names);
            }
        }
        Err(XsError::refused(op, Some(path), XsErrno::EAGAIN))
    }

    fn shutdown_socket(&self) {
        if let Conn::Socket(s) = &*self.writer.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn protocol(op: XsOp, path: Option<&str>, detail: String) -> XsError {
    XsError::Protocol { op, path: path.map(str::to_owned), detail }
}

/// The reader thread: dispatches replies by request id, queues watch events, and records
/// why the connection ended.
fn read_loop(mut conn: Conn, shared: &Shared) {
    loop {
        let result = wire::read_message(&mut conn);
        let mut state = shared.lock();
        if state.closing {
            return;
        }
        match result {
            Err(e) => {
                state.closed.get_or_insert_with(|| e.to_string());
                break;
            }
            Ok(msg) if msg.header.ty == MsgType::WatchEvent.raw() => match wire::parse_watch_event(&msg.payload) {
                Ok((path, token)) => state.events.push_back(WatchEvent { path, token }),
                Err(detail) => {
                    state.closed.get_or_insert_with(|| format!("protocol error: {detail}"));
                    break;
                }
            },
            Ok(msg) => {
                // A reply nobody waits for any more (its request timed out) is dropped.
                if let Some(slot) = state.pending.get_mut(&msg.header.req_id) {
                    *slot = Some(msg);
                }
            }
        }
        drop(state);
        shared.changed.notify_all();
    }
    shared.changed.notify_all();
    if let Conn::Socket(s) = &conn {
        let _ = s.shutdown(Shutdown::Both);
    }
}

impl Drop for XsClient {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.closing = true;
            state.closed.get_or_insert_with(|| "client dropped".into());
        }
        self.shared.changed.notify_all();
        let writer = self.writer.get_mut().unwrap_or_else(|e| e.into_inner());
        match writer {
            Conn::Socket(s) => {
                // Wakes the reader thread out of its read; it exits on seeing `closing`.
                let _ = s.shutdown(Shutdown::Both);
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
            }
            Conn::Device(_) => {
                // A device read can't be interrupted: ask for a cheap reply so the reader
                // wakes up, sees `closing` and exits (closing its handle). Not joined, so
                // a wedged xenstored can't hang the drop.
                let _ = writer.write_all(&Request::get_domain_path(0).encode(0, 0));
                self.reader.take();
            }
        }
    }
}

impl XenStore for XsClient {
    fn read(&self, tx: TxId, path: &str) -> Result<Vec<u8>, XsError> {
        check_path(XsOp::Read, path, false)?;
        self.call(XsOp::Read, Some(path), tx, Request::read(path))
    }

    fn write(&self, tx: TxId, path: &str, value: &[u8]) -> Result<(), XsError> {
        check_path(XsOp::Write, path, false)?;
        self.call_ok(XsOp::Write, Some(path), tx, Request::write(path, value))
    }

    fn directory(&self, tx: TxId, path: &str) -> Result<Vec<String>, XsError> {
        let op = XsOp::Directory;
        check_path(op, path, false)?;
        match self.call(op, Some(path), tx, Request::directory(path)) {
            Ok(payload) => wire::parse_list(&payload).map_err(|detail| protocol(op, Some(path), detail)),
            Err(e) if e.errno() == Some(&XsErrno::E2BIG) => self.directory_parts(tx, path),
            Err(e) => Err(e),
        }
    }

    fn mkdir(&self, tx: TxId, path: &str) -> Result<(), XsError> {
        check_path(XsOp::Mkdir, path, false)?;
        self.call_ok(XsOp::Mkdir, Some(path), tx, Request::mkdir(path))
    }

    fn rm(&self, tx: TxId, path: &str) -> Result<(), XsError> {
        check_path(XsOp::Rm, path, false)?;
        self.call_ok(XsOp::Rm, Some(path), tx, Request::rm(path))
    }

    fn get_domain_path(&self, domid: u32) -> Result<String, XsError> {
        let op = XsOp::GetDomainPath;
        let payload = self.call(op, None, TxId::NONE, Request::get_domain_path(domid))?;
        wire::parse_string(&payload).map_err(|detail| protocol(op, None, detail))
    }

    fn transaction_start(&self) -> Result<TxId, XsError> {
        let op = XsOp::TransactionStart;
        let payload = self.call(op, None, TxId::NONE, Request::transaction_start())?;
        wire::parse_tx_id(&payload).map(TxId).map_err(|detail| protocol(op, None, detail))
    }

    fn transaction_end(&self, tx: TxId, commit: bool) -> Result<(), XsError> {
        self.call_ok(XsOp::TransactionEnd, None, tx, Request::transaction_end(commit))
    }

    fn watch(&self, path: &str, token: &str) -> Result<(), XsError> {
        check_path(XsOp::Watch, path, true)?;
        check_token(XsOp::Watch, token)?;
        self.call_ok(XsOp::Watch, Some(path), TxId::NONE, Request::watch(path, token))
    }

    fn unwatch(&self, path: &str, token: &str) -> Result<(), XsError> {
        check_path(XsOp::Unwatch, path, true)?;
        check_token(XsOp::Unwatch, token)?;
        self.call_ok(XsOp::Unwatch, Some(path), TxId::NONE, Request::unwatch(path, token))?;
        // xenstored sends events before the reply to a later request, so every event of
        // this watch has been queued by now.
        self.shared
            .lock()
            .events
            .retain(|ev| ev.token != token || !(ev.path == path || is_at_or_below(&ev.path, path)));
        Ok(())
    }

    fn endpoint(&self) -> String {
        self.endpoint.display().to_string()
    }

    fn next_event(&self, timeout: Duration) -> Result<Option<WatchEvent>, XsError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.shared.lock();
        loop {
            if let Some(event) = state.events.pop_front() {
                return Ok(Some(event));
            }
            if let Some(reason) = &state.closed {
                return Err(XsError::Disconnected { op: XsOp::NextEvent, path: None, reason: reason.clone() });
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            state = self.shared.wait(state, deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The client against a scripted imitation of xenstored on a temporary socket: out of
    //! order replies, unsolicited events, error replies, `XS_DIRECTORY_PART`, a dying
    //! server.

    use super::*;
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    /// A listening socket in a fresh temporary directory, removed on drop.
    struct TempSocket {
        dir: PathBuf,
        path: PathBuf,
    }

    impl TempSocket {
        fn new() -> (Self, UnixListener) {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "xenvcpu-xs-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            let path = dir.join("socket");
            let listener = UnixListener::bind(&path).unwrap();
            (TempSocket { dir, path }, listener)
        }
    }

    impl Drop for TempSocket {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    /// Runs `script` as the server of one connection; returns the connected client and
    /// the server thread.
    fn serve(script: impl FnOnce(&mut UnixStream) + Send + 'static) -> (XsClient, JoinHandle<()>, TempSocket) {
        let (socket, listener) = TempSocket::new();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            script(&mut stream);
        });
        let client = XsClient::open_path(&socket.path).unwrap();
        (client, server, socket)
    }

    fn recv(stream: &mut UnixStream) -> Message {
        wire::read_message(stream).unwrap()
    }

    fn reply(stream: &mut UnixStream, to: &Message, ty: u32, payload: &[u8]) {
        let bytes = wire::encode_message(ty, to.header.req_id, to.header.tx_id, payload);
        stream.write_all(&bytes).unwrap();
    }

    fn event(stream: &mut UnixStream, path: &str, token: &str) {
        let payload = format!("{path}\0{token}\0");
        let bytes = wire::encode_message(MsgType::WatchEvent.raw(), 0, 0, payload.as_bytes());
        stream.write_all(&bytes).unwrap();
    }

    fn path_of(msg: &Message) -> String {
        let end = msg.payload.iter().position(|&b| b == 0).unwrap();
        String::from_utf8(msg.payload[..end].to_vec()).unwrap()
    }

    #[test]
    fn replies_out_of_order_reach_their_callers_and_events_are_queued() {
        let (client, server, _socket) = serve(|s| {
            let first = recv(s);
            let second = recv(s);
            event(s, "/w", "tok-1");
            // Answer the later request first, with an event in between.
            reply(s, &second, 2, path_of(&second).as_bytes());
            event(s, "/w/x", "tok-2");
            reply(s, &first, 2, path_of(&first).as_bytes());
            // Keep the connection open until the client is done.
            let _ = wire::read_message(s);
        });
        let client = Arc::new(client);
        let threads: Vec<_> = ["/a", "/b"]
            .into_iter()
            .map(|path| {
                let client = Arc::clone(&client);
                thread::spawn(move || client.read_string(TxId::NONE, path).unwrap())
            })
            .collect();
        let values: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(values, ["/a", "/b"]);
        let ev = client.next_event(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!((ev.path.as_str(), ev.token.as_str()), ("/w", "tok-1"));
        let ev = client.next_event(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!((ev.path.as_str(), ev.token.as_str()), ("/w/x", "tok-2"));
        assert_eq!(client.next_event(Duration::from_millis(20)).unwrap(), None);
        drop(client);
        server.join().unwrap();
    }

    #[test]
    fn xs_error_replies_become_typed_errors_with_op_and_path() {
        let (client, server, _socket) = serve(|s| {
            let read = recv(s);
            assert_eq!(read.header.ty, MsgType::Read.raw());
            reply(s, &read, MsgType::Error.raw(), b"ENOENT\0");
            let start = recv(s);
            assert_eq!(start.payload, b"\0");
            reply(s, &start, MsgType::TransactionStart.raw(), b"17\0");
            let write = recv(s);
            assert_eq!(write.header.tx_id, 17, "the tx id travels in the header");
            assert_eq!(write.payload, b"/k\0v");
            reply(s, &write, MsgType::Write.raw(), b"OK\0");
            let end = recv(s);
            assert_eq!((end.header.tx_id, end.payload.as_slice()), (17, &b"T\0"[..]));
            reply(s, &end, MsgType::Error.raw(), b"EAGAIN\0");
            let weird = recv(s);
            reply(s, &weird, MsgType::Error.raw(), b"EQUOTA\0");
        });
        let e = client.read(TxId::NONE, "/local/domain/7/name").unwrap_err();
        assert_eq!(e.to_string(), "xenstore read /local/domain/7/name: ENOENT (no such node)");
        assert!(e.is_not_found());
        let tx = client.transaction_start().unwrap();
        assert_eq!(tx, TxId(17));
        client.write(tx, "/k", b"v").unwrap();
        let e = client.transaction_end(tx, true).unwrap_err();
        assert!(e.is_again(), "{e}");
        assert_eq!(e.op(), Some(XsOp::TransactionEnd));
        let e = client.mkdir(TxId::NONE, "/q").unwrap_err();
        assert_eq!(e.errno(), Some(&XsErrno::Other("EQUOTA".into())));
        server.join().unwrap();
    }

    #[test]
    fn refused_requests_are_never_sent_and_the_connection_keeps_working() {
        let (client, server, _socket) = serve(|s| {
            // The first thing to arrive must be the valid read.
            let read = recv(s);
            assert_eq!(read.payload, b"/ok\0");
            reply(s, &read, MsgType::Read.raw(), b"fine");
            let _ = wire::read_message(s);
        });
        let big = vec![b'x'; PAYLOAD_MAX];
        match client.write(TxId::NONE, "/big", &big) {
            Err(XsError::PayloadTooLarge { size, op, path, limit }) => {
                assert_eq!(limit, PAYLOAD_MAX);
                assert_eq!(size, PAYLOAD_MAX + "/big".len() + 1);
                assert_eq!(op, XsOp::Write);
                assert_eq!(path.as_deref(), Some("/big"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(client.read(TxId::NONE, "relative"), Err(XsError::RelativePath { .. })));
        assert!(matches!(client.watch("/w", "a\0b"), Err(XsError::InvalidArgument { what: "token", .. })));
        assert_eq!(client.read(TxId::NONE, "/ok").unwrap(), b"fine");
        drop(client);
        server.join().unwrap();
    }

    #[test]
    fn a_closed_connection_fails_waiting_and_later_requests() {
        let (client, server, _socket) = serve(|s| {
            let _ = recv(s);
            // Hang up without replying.
        });
        let e = client.read(TxId::NONE, "/a").unwrap_err();
        assert!(matches!(e, XsError::Disconnected { .. }), "{e}");
        assert!(e.to_string().contains("closed the connection"), "{e}");
        let e = client.write(TxId::NONE, "/a", b"x").unwrap_err();
        assert!(matches!(e, XsError::Disconnected { .. }), "{e}");
        let e = client.next_event(Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, XsError::Disconnected { .. }), "{e}");
        server.join().unwrap();
    }

    #[test]
    fn a_timed_out_request_does_not_confuse_the_next_one() {
        let (tx_done, rx_done) = mpsc::channel::<()>();
        let (mut client, server, _socket) = serve(move |s| {
            let slow = recv(s);
            // Let the client give up, then answer late, then answer the next request.
            rx_done.recv().unwrap();
            reply(s, &slow, MsgType::Read.raw(), b"late");
            let next = recv(s);
            reply(s, &next, MsgType::Read.raw(), b"on time");
            let _ = wire::read_message(s);
        });
        client.set_timeout(Duration::from_millis(100));
        let e = client.read(TxId::NONE, "/slow").unwrap_err();
        assert!(matches!(e, XsError::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("/slow: no reply within"), "{e}");
        tx_done.send(()).unwrap();
        client.set_timeout(Duration::from_secs(10));
        assert_eq!(client.read(TxId::NONE, "/next").unwrap(), b"on time");
        drop(client);
        server.join().unwrap();
    }

    #[test]
    fn wrong_reply_type_is_a_protocol_error() {
        let (client, server, _socket) = serve(|s| {
            let read = recv(s);
            reply(s, &read, MsgType::Write.raw(), b"OK\0");
            let write = recv(s);
            reply(s, &write, MsgType::Write.raw(), b"KO\0");
            let _ = wire::read_message(s);
        });
        let e = client.read(TxId::NONE, "/a").unwrap_err();
        assert!(
            matches!(&e, XsError::Protocol { detail, .. } if detail.contains("XS_READ request got a XS_WRITE reply")),
            "{e}"
        );
        let e = client.write(TxId::NONE, "/a", b"").unwrap_err();
        assert!(matches!(e, XsError::Protocol { .. }), "{e}");
        drop(client);
        server.join().unwrap();
    }

    #[test]
    fn directory_falls_back_to_directory_part_on_e2big() {
        let (client, server, _socket) = serve(|s| {
            let dir = recv(s);
            assert_eq!(dir.header.ty, MsgType::Directory.raw());
            reply(s, &dir, MsgType::Error.raw(), b"E2BIG\0");
            // First walk: the generation changes after one slice, so the client restarts.
            let p0 = recv(s);
            assert_eq!(p0.header.ty, MsgType::DirectoryPart.raw());
            assert_eq!(p0.payload, b"/d\x000\0");
            reply(s, &p0, MsgType::DirectoryPart.raw(), b"5\0a\0b\0");
            let p1 = recv(s);
            assert_eq!(p1.payload, b"/d\x004\0");
            reply(s, &p1, MsgType::DirectoryPart.raw(), b"6\0c\0\0");
            // Second walk: consistent.
            let p0 = recv(s);
            assert_eq!(p0.payload, b"/d\x000\0");
            reply(s, &p0, MsgType::DirectoryPart.raw(), b"6\0a\0b\0");
            let p1 = recv(s);
            assert_eq!(p1.payload, b"/d\x004\0");
            reply(s, &p1, MsgType::DirectoryPart.raw(), b"6\0cc\0\0");
            let small = recv(s);
            reply(s, &small, MsgType::Directory.raw(), b"");
        });
        assert_eq!(client.directory(TxId::NONE, "/d").unwrap(), ["a", "b", "cc"]);
        assert!(client.directory(TxId::NONE, "/e").unwrap().is_empty());
        server.join().unwrap();
    }

    #[test]
    fn unwatch_discards_events_of_that_watch_still_queued() {
        let (client, server, _socket) = serve(|s| {
            let watch = recv(s);
            assert_eq!(watch.payload, b"/w\0t\0");
            reply(s, &watch, MsgType::Watch.raw(), b"OK\0");
            event(s, "/w", "t");
            let other = recv(s);
            reply(s, &other, MsgType::Watch.raw(), b"OK\0");
            event(s, "/v", "u");
            let unwatch = recv(s);
            event(s, "/w/x", "t");
            event(s, "/v/y", "u");
            reply(s, &unwatch, MsgType::Unwatch.raw(), b"OK\0");
            let _ = wire::read_message(s);
        });
        client.watch("/w", "t").unwrap();
        client.watch("/v", "u").unwrap();
        client.unwatch("/w", "t").unwrap();
        let mut seen = Vec::new();
        while let Some(ev) = client.next_event(Duration::from_millis(50)).unwrap() {
            seen.push((ev.path, ev.token));
        }
        assert_eq!(seen, [("/v".to_owned(), "u".to_owned()), ("/v/y".into(), "u".into())]);
        drop(client);
        server.join().unwrap();
    }

    #[test]
    fn many_threads_share_one_connection() {
        // The server answers whatever has arrived, newest first, with events mixed in.
        let (client, server, _socket) = serve(|s| {
            let (to_writer, requests) = mpsc::channel::<Message>();
            let mut reader = s.try_clone().unwrap();
            let reading = thread::spawn(move || {
                while let Ok(msg) = wire::read_message(&mut reader) {
                    if to_writer.send(msg).is_err() {
                        break;
                    }
                }
            });
            let mut answered = 0;
            while let Ok(first) = requests.recv() {
                let mut batch = vec![first];
                batch.extend(requests.try_iter());
                for msg in batch.iter().rev() {
                    answered += 1;
                    if answered % 7 == 0 {
                        event(s, "/events", &answered.to_string());
                    }
                    reply(s, msg, msg.header.ty, path_of(msg).as_bytes());
                }
            }
            reading.join().unwrap();
        });
        thread::scope(|scope| {
            for t in 0..4 {
                let client = &client;
                scope.spawn(move || {
                    for i in 0..50 {
                        let path = format!("/t{t}/n{i}");
                        assert_eq!(client.read_string(TxId::NONE, &path).unwrap(), path);
                    }
                });
            }
        });
        let mut events = 0;
        while client.next_event(Duration::from_millis(100)).unwrap().is_some() {
            events += 1;
        }
        assert_eq!(events, 200 / 7);
        drop(client);
        server.join().unwrap();
    }

    #[test]
    fn connect_failure_lists_every_endpoint() {
        let (socket, listener) = TempSocket::new();
        drop(listener); // the socket file stays, but nobody listens
        let missing = socket.dir.join("missing");
        let e = XsClient::open_any(&[missing.clone(), socket.path.clone()]).unwrap_err();
        match &e {
            XsError::Connect { attempts } => {
                assert_eq!(attempts.len(), 2);
                assert_eq!(attempts[0].path, missing);
                assert_eq!(attempts[0].error.kind(), io::ErrorKind::NotFound);
                assert_eq!(attempts[1].path, socket.path);
                assert_eq!(attempts[1].error.kind(), io::ErrorKind::ConnectionRefused);
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("missing: "), "{e}");
    }

    #[test]
    fn default_endpoints_end_with_the_documented_paths() {
        let endpoints = default_endpoints();
        let tail: Vec<_> = endpoints[endpoints.len() - 4..].iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(tail, ["/run/xenstored/socket", "/var/run/xenstored/socket", "/dev/xen/xenbus", "/proc/xen/xenbus"]);
    }
}
