//! Fuzzes the xenstore wire decoder: frames (header + payload) read from arbitrary bytes,
//! and every reply and watch-event payload parser.
//!
//! Invariants: nothing panics; a frame is read only when the bytes hold a whole one with a
//! payload of at most `PAYLOAD_MAX` bytes, and re-encoding it gives those bytes back; a
//! short input is `UnexpectedEof` and an oversized length `InvalidData`; whatever a payload
//! parser accepts re-encodes to the payload it came from (up to the optional final NUL the
//! parser documents).
#![no_main]

use std::io::ErrorKind;

use libfuzzer_sys::fuzz_target;
use xenvcpu::xenstore::wire_fuzzing::{self as wire, Frame};
use xenvcpu::xenstore::PAYLOAD_MAX;

const HEADER_LEN: usize = 16;

/// `parts`, each followed by a NUL.
fn nul_terminated<S: AsRef<str>>(parts: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(part.as_ref().as_bytes());
        out.push(0);
    }
    out
}

/// Whether `payload` is `encoded`, or `encoded` without its final NUL.
fn is_with_or_without_final_nul(payload: &[u8], encoded: &[u8]) -> bool {
    payload == encoded || Some(payload) == encoded.strip_suffix(b"\0")
}

fn check_frame(data: &[u8]) {
    let mut reader = data;
    match wire::read_frame(&mut reader) {
        Ok(frame) => {
            let len = frame.payload.len();
            assert!(len <= PAYLOAD_MAX, "payload of {len} bytes");
            let announced = u32::from_ne_bytes(data[12..16].try_into().unwrap()) as usize;
            assert_eq!(len, announced, "payload length differs from the header's");
            assert_eq!(reader.len(), data.len() - HEADER_LEN - len, "consumed more or less than one frame");
            assert_eq!(wire::encode_frame(&frame), &data[..HEADER_LEN + len], "frame does not re-encode");
            check_payload(frame.ty, &frame.payload);
        }
        Err(e) => {
            if data.len() >= HEADER_LEN {
                let announced = u32::from_ne_bytes(data[12..16].try_into().unwrap()) as usize;
                if announced > PAYLOAD_MAX {
                    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
                } else {
                    assert!(data.len() < HEADER_LEN + announced, "a whole frame was refused: {e}");
                    assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
                }
            } else {
                assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
            }
        }
    }
}

fn check_payload(ty: u32, payload: &[u8]) {
    if let Ok(errno) = wire::parse_error(payload) {
        let name = errno.name();
        assert!(!name.is_empty() && !name.contains('\0'));
        assert!(is_with_or_without_final_nul(payload, &nul_terminated(&[name])), "{errno:?} from {payload:?}");
    }
    if wire::parse_ok(payload).is_ok() {
        assert!(payload == b"OK\0" || payload == b"OK");
    }
    if let Ok(text) = wire::parse_string(payload) {
        assert!(!text.contains('\0'));
        assert!(is_with_or_without_final_nul(payload, &nul_terminated(&[&text])));
    }
    if let Ok(id) = wire::parse_tx_id(payload) {
        assert_ne!(id, 0);
        let text = wire::parse_string(payload).expect("a transaction id is a string");
        assert_eq!(text.parse::<u32>(), Ok(id));
    }
    if let Ok(names) = wire::parse_list(payload) {
        assert!(names.iter().all(|n| !n.contains('\0')));
        assert_eq!(nul_terminated(&names), payload, "list {names:?}");
    }
    if let Ok((path, token)) = wire::parse_watch_event(payload) {
        assert!(!path.is_empty() && !path.contains('\0') && !token.contains('\0'));
        assert!(is_with_or_without_final_nul(payload, &nul_terminated(&[&path, &token])), "event {path:?} {token:?}");
    }
    if let Ok((generation, names, bytes, complete)) = wire::parse_directory_part(payload) {
        assert!(!generation.contains('\0') && names.iter().all(|n| !n.contains('\0')));
        let list = nul_terminated(&names);
        assert_eq!(bytes, list.len(), "bytes covered by {names:?}");
        assert!(complete || !names.is_empty());
        let mut encoded = nul_terminated(&[&generation]);
        encoded.extend_from_slice(&list);
        if complete {
            encoded.push(0);
        }
        assert_eq!(encoded, payload, "directory part {generation:?} {names:?} {complete}");
    }
    // The type only selects which parser the client would use; all of them ran above.
    let _ = ty;
}

fuzz_target!(|data: &[u8]| {
    // The input as a frame (usually short: the payload is the rest of the input) ...
    check_frame(data);
    // ... as a frame whose length field is made to fit the input, so that the payload
    // parsers are reached through the framing as well ...
    if data.len() >= HEADER_LEN {
        let len = (data.len() - HEADER_LEN).min(PAYLOAD_MAX);
        let frame = Frame {
            ty: u32::from_ne_bytes(data[0..4].try_into().unwrap()),
            req_id: u32::from_ne_bytes(data[4..8].try_into().unwrap()),
            tx_id: u32::from_ne_bytes(data[8..12].try_into().unwrap()),
            payload: data[HEADER_LEN..HEADER_LEN + len].to_vec(),
        };
        let bytes = wire::encode_frame(&frame);
        let mut reader = bytes.as_slice();
        assert_eq!(wire::read_frame(&mut reader).expect("a well-formed frame"), frame);
        assert!(reader.is_empty());
    }
    // ... and as a bare payload.
    check_payload(15, data);
});
