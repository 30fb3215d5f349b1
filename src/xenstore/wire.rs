//! The xenstored wire format (`xen/include/public/io/xs_wire.h`, `docs/misc/xenstore.txt`):
//! message header, message types, request payloads and reply parsing.
//!
//! Pure code with no I/O besides [`read_message`], which reads one framed message from any
//! reader. A message is a 16-byte header of four native-endian `u32`s — type, request id,
//! transaction id, payload length — followed by at most [`PAYLOAD_MAX`] payload bytes.
//! Payloads are NUL-separated strings; a value written or read is raw bytes with no
//! terminating NUL.

use std::io::{self, Read};

use super::error::XsErrno;

/// Size of the message header (`struct xsd_sockmsg`).
pub(crate) const HEADER_LEN: usize = 16;

/// Largest payload xenstored accepts or sends (`XENSTORE_PAYLOAD_MAX`). A request with a
/// larger payload makes xenstored drop the connection, so it is refused before sending.
pub const PAYLOAD_MAX: usize = 4096;

/// Message types (`enum xsd_sockmsg_type`) this crate sends or receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum MsgType {
    /// `XS_DIRECTORY`.
    Directory = 1,
    /// `XS_READ`.
    Read = 2,
    /// `XS_WATCH`.
    Watch = 4,
    /// `XS_UNWATCH`.
    Unwatch = 5,
    /// `XS_TRANSACTION_START`.
    TransactionStart = 6,
    /// `XS_TRANSACTION_END`.
    TransactionEnd = 7,
    /// `XS_GET_DOMAIN_PATH`.
    GetDomainPath = 10,
    /// `XS_WRITE`.
    Write = 11,
    /// `XS_MKDIR`.
    Mkdir = 12,
    /// `XS_RM`.
    Rm = 13,
    /// `XS_WATCH_EVENT`: unsolicited, `req_id` = `tx_id` = 0.
    WatchEvent = 15,
    /// `XS_ERROR`: the reply to a failed request, payload = an errno name.
    Error = 16,
    /// `XS_DIRECTORY_PART` (Xen 4.9+): a slice of a long child list.
    DirectoryPart = 22,
}

impl MsgType {
    /// The raw `type` field.
    pub(crate) const fn raw(self) -> u32 {
        self as u32
    }
}

/// Human-readable name of a raw message type, for protocol error messages.
pub(crate) fn type_name(raw: u32) -> String {
    let name = match raw {
        0 => "XS_CONTROL",
        1 => "XS_DIRECTORY",
        2 => "XS_READ",
        3 => "XS_GET_PERMS",
        4 => "XS_WATCH",
        5 => "XS_UNWATCH",
        6 => "XS_TRANSACTION_START",
        7 => "XS_TRANSACTION_END",
        8 => "XS_INTRODUCE",
        9 => "XS_RELEASE",
        10 => "XS_GET_DOMAIN_PATH",
        11 => "XS_WRITE",
        12 => "XS_MKDIR",
        13 => "XS_RM",
        14 => "XS_SET_PERMS",
        15 => "XS_WATCH_EVENT",
        16 => "XS_ERROR",
        17 => "XS_IS_DOMAIN_INTRODUCED",
        18 => "XS_RESUME",
        19 => "XS_SET_TARGET",
        21 => "XS_RESET_WATCHES",
        22 => "XS_DIRECTORY_PART",
        23 => "XS_GET_FEATURE",
        24 => "XS_SET_FEATURE",
        25 => "XS_GET_QUOTA",
        26 => "XS_SET_QUOTA",
        0xffff => "XS_INVALID",
        _ => return format!("type {raw}"),
    };
    name.to_owned()
}

/// A message header (`struct xsd_sockmsg`), native-endian on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Message type (a [`MsgType`] value, raw so unknown types can be reported).
    pub(crate) ty: u32,
    /// Request id, echoed in the reply; 0 in watch events.
    pub(crate) req_id: u32,
    /// Transaction id, 0 outside transactions.
    pub(crate) tx_id: u32,
    /// Payload length in bytes.
    pub(crate) len: u32,
}

impl Header {
    /// The 16 bytes of the header.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        for (i, field) in [self.ty, self.req_id, self.tx_id, self.len].into_iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&field.to_ne_bytes());
        }
        out
    }

    /// Parses 16 header bytes.
    pub(crate) fn decode(bytes: &[u8; HEADER_LEN]) -> Self {
        let field = |i: usize| u32::from_ne_bytes([bytes[i * 4], bytes[i * 4 + 1], bytes[i * 4 + 2], bytes[i * 4 + 3]]);
        Header { ty: field(0), req_id: field(1), tx_id: field(2), len: field(3) }
    }
}

/// One framed message as read off the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// Its header.
    pub(crate) header: Header,
    /// Its payload (`header.len` bytes).
    pub(crate) payload: Vec<u8>,
}

/// A request: its type and its payload, built by the constructors below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The message type.
    pub(crate) ty: MsgType,
    /// The payload.
    pub(crate) payload: Vec<u8>,
}

impl Request {
    fn new(ty: MsgType, parts: &[&[u8]], nul_after_last: bool) -> Self {
        let mut payload = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for (i, part) in parts.iter().enumerate() {
            payload.extend_from_slice(part);
            if i + 1 < parts.len() || nul_after_last {
                payload.push(0);
            }
        }
        Request { ty, payload }
    }

    /// `XS_READ <path>|`.
    pub(crate) fn read(path: &str) -> Self {
        Self::new(MsgType::Read, &[path.as_bytes()], true)
    }

    /// `XS_WRITE <path>|<value>` (the value is not NUL-terminated).
    pub(crate) fn write(path: &str, value: &[u8]) -> Self {
        Self::new(MsgType::Write, &[path.as_bytes(), value], false)
    }

    /// `XS_DIRECTORY <path>|`.
    pub(crate) fn directory(path: &str) -> Self {
        Self::new(MsgType::Directory, &[path.as_bytes()], true)
    }

    /// `XS_DIRECTORY_PART <path>|<offset>|`, offset in bytes into the child list.
    pub(crate) fn directory_part(path: &str, offset: usize) -> Self {
        let offset = offset.to_string();
        Self::new(MsgType::DirectoryPart, &[path.as_bytes(), offset.as_bytes()], true)
    }

    /// `XS_MKDIR <path>|`.
    pub(crate) fn mkdir(path: &str) -> Self {
        Self::new(MsgType::Mkdir, &[path.as_bytes()], true)
    }

    /// `XS_RM <path>|`.
    pub(crate) fn rm(path: &str) -> Self {
        Self::new(MsgType::Rm, &[path.as_bytes()], true)
    }

    /// `XS_GET_DOMAIN_PATH <domid>|`.
    pub(crate) fn get_domain_path(domid: u32) -> Self {
        let domid = domid.to_string();
        Self::new(MsgType::GetDomainPath, &[domid.as_bytes()], true)
    }

    /// `XS_TRANSACTION_START |`.
    pub(crate) fn transaction_start() -> Self {
        Self::new(MsgType::TransactionStart, &[b""], true)
    }

    /// `XS_TRANSACTION_END T|` (commit) or `F|` (abort).
    pub(crate) fn transaction_end(commit: bool) -> Self {
        let arg: &[u8] = if commit { b"T" } else { b"F" };
        Self::new(MsgType::TransactionEnd, &[arg], true)
    }

    /// `XS_WATCH <path>|<token>|`.
    pub(crate) fn watch(path: &str, token: &str) -> Self {
        Self::new(MsgType::Watch, &[path.as_bytes(), token.as_bytes()], true)
    }

    /// `XS_UNWATCH <path>|<token>|`.
    pub(crate) fn unwatch(path: &str, token: &str) -> Self {
        Self::new(MsgType::Unwatch, &[path.as_bytes(), token.as_bytes()], true)
    }

    /// The framed message: header then payload. The caller has checked the size.
    pub(crate) fn encode(&self, req_id: u32, tx_id: u32) -> Vec<u8> {
        encode_message(self.ty.raw(), req_id, tx_id, &self.payload)
    }
}

/// Frames any message (also used by test servers to frame replies and events).
pub(crate) fn encode_message(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let header = Header { ty, req_id, tx_id, len };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(payload);
    out
}

/// Reads one message. End of stream before the first header byte is `UnexpectedEof`
/// ("closed"); a payload length over [`PAYLOAD_MAX`] is `InvalidData` (the framing can't
/// be trusted after that).
pub(crate) fn read_message(reader: &mut impl Read) -> io::Result<Message> {
    let mut head = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match reader.read(&mut head[got..]) {
            Ok(0) if got == 0 => {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "xenstored closed the connection"))
            }
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection closed inside a message header ({got} of 16 bytes)"),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let header = Header::decode(&head);
    let len = header.len as usize;
    if len > PAYLOAD_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} message announces a {len}-byte payload (limit {PAYLOAD_MAX})", type_name(header.ty)),
        ));
    }
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(io::ErrorKind::UnexpectedEof, format!("connection closed inside a {len}-byte payload"))
        } else {
            e
        }
    })?;
    Ok(Message { header, payload })
}

/// A payload that could not be parsed; the string says why.
pub(crate) type ParseError = String;

fn utf8(bytes: &[u8], what: &str) -> Result<String, ParseError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8: {bytes:?}"))
}

/// `XS_ERROR` payload: an errno name, NUL-terminated.
pub(crate) fn parse_error(payload: &[u8]) -> Result<XsErrno, ParseError> {
    let name = payload.strip_suffix(b"\0").unwrap_or(payload);
    if name.is_empty() || name.contains(&0) {
        return Err(format!("malformed XS_ERROR payload {payload:?}"));
    }
    Ok(XsErrno::from_name(&utf8(name, "error name")?))
}

/// A reply with no specific payload: `OK|`.
pub(crate) fn parse_ok(payload: &[u8]) -> Result<(), ParseError> {
    match payload {
        b"OK\0" | b"OK" => Ok(()),
        other => Err(format!("expected \"OK\\0\", got {other:?}")),
    }
}

/// A single string, optionally NUL-terminated (`XS_GET_DOMAIN_PATH`,
/// `XS_TRANSACTION_START`).
pub(crate) fn parse_string(payload: &[u8]) -> Result<String, ParseError> {
    let text = payload.strip_suffix(b"\0").unwrap_or(payload);
    if text.contains(&0) {
        return Err(format!("expected one string, got {payload:?}"));
    }
    utf8(text, "reply")
}

/// `XS_TRANSACTION_START` reply: the decimal transaction id (never 0).
pub(crate) fn parse_tx_id(payload: &[u8]) -> Result<u32, ParseError> {
    let text = parse_string(payload)?;
    match text.parse::<u32>() {
        Ok(0) | Err(_) => Err(format!("invalid transaction id {text:?}")),
        Ok(id) => Ok(id),
    }
}

/// A list of NUL-terminated strings (`XS_DIRECTORY`): `a|b|` → `["a", "b"]`; empty → `[]`.
pub(crate) fn parse_list(payload: &[u8]) -> Result<Vec<String>, ParseError> {
    if payload.is_empty() {
        return Ok(Vec::new());
    }
    let body = payload.strip_suffix(b"\0").ok_or_else(|| format!("list is not NUL-terminated: {payload:?}"))?;
    body.split(|&b| b == 0).map(|name| utf8(name, "name")).collect()
}

/// `XS_WATCH_EVENT` payload: `<path>|<token>|` → `(path, token)`.
pub(crate) fn parse_watch_event(payload: &[u8]) -> Result<(String, String), ParseError> {
    let body = payload.strip_suffix(b"\0").unwrap_or(payload);
    let mut parts = body.splitn(2, |&b| b == 0);
    let path = parts.next().unwrap_or_default();
    let token = parts.next().ok_or_else(|| format!("watch event without a token: {payload:?}"))?;
    if path.is_empty() || token.contains(&0) {
        return Err(format!("malformed watch event {payload:?}"));
    }
    Ok((utf8(path, "event path")?, utf8(token, "event token")?))
}

/// One `XS_DIRECTORY_PART` reply: `<generation>|<child>|…<child>|` with one extra `|` when
/// the slice reaches the end of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirectoryPart {
    /// The node's generation count; it changes when the child list changes, and a
    /// reader must then start over.
    pub(crate) generation: String,
    /// The names in this slice.
    pub(crate) names: Vec<String>,
    /// Bytes of the child list this slice covers (the next offset is `offset + bytes`).
    pub(crate) bytes: usize,
    /// Whether this slice ends the list.
    pub(crate) complete: bool,
}

/// Parses an `XS_DIRECTORY_PART` reply.
pub(crate) fn parse_directory_part(payload: &[u8]) -> Result<DirectoryPart, ParseError> {
    let nul = payload
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| format!("directory part without a generation: {payload:?}"))?;
    let generation = utf8(&payload[..nul], "generation")?;
    let rest = &payload[nul + 1..];
    // The end marker is an empty string: the slice is "" + NUL, or ends in two NULs.
    let (list, complete) = if rest == b"\0" {
        (&rest[..0], true)
    } else if rest.ends_with(b"\0\0") {
        (&rest[..rest.len() - 1], true)
    } else {
        (rest, false)
    };
    if !complete && list.is_empty() {
        return Err("directory part with no names that does not end the list".into());
    }
    Ok(DirectoryPart { generation, names: parse_list(list)?, bytes: list.len(), complete })
}

/// The decoders of this module for the fuzz targets (`tests/fuzz`) and nothing else: not
/// part of the crate's API, and free to change with the wire code.
#[doc(hidden)]
pub mod fuzzing {
    use std::io::{self, Read};

    use super::XsErrno;

    /// One decoded frame: the header's type, request id and transaction id, and the payload
    /// (whose length is the header's length field).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Frame {
        /// Message type.
        pub ty: u32,
        /// Request id.
        pub req_id: u32,
        /// Transaction id.
        pub tx_id: u32,
        /// Payload.
        pub payload: Vec<u8>,
    }

    /// Reads one frame as the client does.
    ///
    /// # Errors
    /// As the client's reader: `UnexpectedEof` for a short frame, `InvalidData` for a
    /// payload over [`super::PAYLOAD_MAX`].
    pub fn read_frame(reader: &mut impl Read) -> io::Result<Frame> {
        let msg = super::read_message(reader)?;
        Ok(Frame { ty: msg.header.ty, req_id: msg.header.req_id, tx_id: msg.header.tx_id, payload: msg.payload })
    }

    /// Frames a message (header then payload), as requests and test servers do.
    pub fn encode_frame(frame: &Frame) -> Vec<u8> {
        super::encode_message(frame.ty, frame.req_id, frame.tx_id, &frame.payload)
    }

    /// The `XS_ERROR` reply parser.
    ///
    /// # Errors
    /// A malformed payload, with the reason.
    pub fn parse_error(payload: &[u8]) -> Result<XsErrno, String> {
        super::parse_error(payload)
    }

    /// The `OK` reply parser.
    ///
    /// # Errors
    /// Anything but `OK`.
    pub fn parse_ok(payload: &[u8]) -> Result<(), String> {
        super::parse_ok(payload)
    }

    /// The single-string reply parser.
    ///
    /// # Errors
    /// A NUL inside, or not UTF-8.
    pub fn parse_string(payload: &[u8]) -> Result<String, String> {
        super::parse_string(payload)
    }

    /// The `XS_TRANSACTION_START` reply parser.
    ///
    /// # Errors
    /// Not a non-zero decimal `u32`.
    pub fn parse_tx_id(payload: &[u8]) -> Result<u32, String> {
        super::parse_tx_id(payload)
    }

    /// The `XS_DIRECTORY` reply parser.
    ///
    /// # Errors
    /// Not NUL-terminated, or a name not UTF-8.
    pub fn parse_list(payload: &[u8]) -> Result<Vec<String>, String> {
        super::parse_list(payload)
    }

    /// The `XS_WATCH_EVENT` payload parser: `(path, token)`.
    ///
    /// # Errors
    /// A malformed event.
    pub fn parse_watch_event(payload: &[u8]) -> Result<(String, String), String> {
        super::parse_watch_event(payload)
    }

    /// The `XS_DIRECTORY_PART` reply parser: `(generation, names, bytes, complete)`.
    ///
    /// # Errors
    /// A malformed slice.
    pub fn parse_directory_part(payload: &[u8]) -> Result<(String, Vec<String>, usize, bool), String> {
        super::parse_directory_part(payload).map(|p| (p.generation, p.names, p.bytes, p.complete))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ne(words: [u32; 4]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    #[test]
    fn header_is_four_native_endian_words() {
        let h = Header { ty: 2, req_id: 0x0102_0304, tx_id: 7, len: 12 };
        assert_eq!(h.encode().to_vec(), ne([2, 0x0102_0304, 7, 12]));
        assert_eq!(Header::decode(&h.encode()), h);
    }

    #[test]
    fn request_payloads_follow_the_protocol() {
        assert_eq!(Request::read("/a/b").payload, b"/a/b\0");
        assert_eq!(Request::read("/a/b").ty, MsgType::Read);
        assert_eq!(Request::write("/a", b"v\0x").payload, b"/a\0v\0x");
        assert_eq!(Request::write("/a", b"").payload, b"/a\0");
        assert_eq!(Request::directory("/a").payload, b"/a\0");
        assert_eq!(Request::directory_part("/a", 4100).payload, b"/a\x004100\0");
        assert_eq!(Request::mkdir("/a").payload, b"/a\0");
        assert_eq!(Request::rm("/a").payload, b"/a\0");
        assert_eq!(Request::get_domain_path(7).payload, b"7\0");
        assert_eq!(Request::transaction_start().payload, b"\0");
        assert_eq!(Request::transaction_end(true).payload, b"T\0");
        assert_eq!(Request::transaction_end(false).payload, b"F\0");
        assert_eq!(Request::watch("/a", "tok").payload, b"/a\0tok\0");
        assert_eq!(Request::unwatch("@releaseDomain", "").payload, b"@releaseDomain\0\0");
    }

    #[test]
    fn message_types_have_their_xs_wire_numbers() {
        let expected = [
            (MsgType::Directory, 1),
            (MsgType::Read, 2),
            (MsgType::Watch, 4),
            (MsgType::Unwatch, 5),
            (MsgType::TransactionStart, 6),
            (MsgType::TransactionEnd, 7),
            (MsgType::GetDomainPath, 10),
            (MsgType::Write, 11),
            (MsgType::Mkdir, 12),
            (MsgType::Rm, 13),
            (MsgType::WatchEvent, 15),
            (MsgType::Error, 16),
            (MsgType::DirectoryPart, 22),
        ];
        for (ty, raw) in expected {
            assert_eq!(ty.raw(), raw);
        }
        assert_eq!(type_name(16), "XS_ERROR");
        assert_eq!(type_name(99), "type 99");
    }

    #[test]
    fn encode_then_read_round_trips() {
        let bytes = Request::write("/x", b"hello").encode(9, 3);
        assert_eq!(&bytes[..16], ne([11, 9, 3, 8]).as_slice());
        let msg = read_message(&mut bytes.as_slice()).unwrap();
        assert_eq!(msg.header, Header { ty: 11, req_id: 9, tx_id: 3, len: 8 });
        assert_eq!(msg.payload, b"/x\0hello");
    }

    #[test]
    fn read_message_reports_eof_and_oversized_frames() {
        let err = read_message(&mut &b""[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("closed the connection"));

        let err = read_message(&mut &ne([2, 1, 0, 0])[..7]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("7 of 16"), "{err}");

        let mut short = ne([2, 1, 0, 5]);
        short.extend_from_slice(b"ab");
        let err = read_message(&mut short.as_slice()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

        let big = ne([2, 1, 0, 4097]);
        let err = read_message(&mut big.as_slice()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("4097"), "{err}");
    }

    #[test]
    fn reply_parsers_accept_the_documented_forms() {
        assert_eq!(parse_error(b"ENOENT\0").unwrap(), XsErrno::ENOENT);
        assert_eq!(parse_error(b"EAGAIN").unwrap(), XsErrno::EAGAIN);
        assert_eq!(parse_error(b"EWHAT\0").unwrap(), XsErrno::Other("EWHAT".into()));
        assert!(parse_error(b"\0").is_err());

        assert!(parse_ok(b"OK\0").is_ok());
        assert!(parse_ok(b"NO\0").is_err());

        assert_eq!(parse_string(b"/local/domain/7\0").unwrap(), "/local/domain/7");
        assert!(parse_string(b"a\0b\0").is_err());

        assert_eq!(parse_tx_id(b"42\0").unwrap(), 42);
        assert!(parse_tx_id(b"0\0").is_err());
        assert!(parse_tx_id(b"x\0").is_err());

        assert_eq!(parse_list(b"").unwrap(), Vec::<String>::new());
        assert_eq!(parse_list(b"a\0bc\0").unwrap(), ["a", "bc"]);
        assert!(parse_list(b"a\0b").is_err());

        assert_eq!(parse_watch_event(b"/a/b\0tok\0").unwrap(), ("/a/b".to_owned(), "tok".to_owned()));
        assert_eq!(parse_watch_event(b"/a\0\0").unwrap(), ("/a".to_owned(), String::new()));
        assert!(parse_watch_event(b"/a\0").is_err());
    }

    #[test]
    fn directory_part_slices_and_end_marker() {
        let part = parse_directory_part(b"17\0a\0bb\0").unwrap();
        assert_eq!(
            part,
            DirectoryPart { generation: "17".into(), names: vec!["a".into(), "bb".into()], bytes: 5, complete: false }
        );
        let last = parse_directory_part(b"17\0c\0\0").unwrap();
        assert_eq!(last.names, ["c"]);
        assert_eq!(last.bytes, 2);
        assert!(last.complete);
        let empty = parse_directory_part(b"3\0\0").unwrap();
        assert!(empty.complete && empty.names.is_empty() && empty.bytes == 0);
        assert!(parse_directory_part(b"3\0").is_err());
        assert!(parse_directory_part(b"3").is_err());
    }
}
