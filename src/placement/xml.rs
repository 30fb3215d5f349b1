//! Reading `<vcpu>` and `<cputune>` from domain XML or a fragment of it.

use std::collections::BTreeMap;

use roxmltree::{Document, Node};

use super::{Placement, PlacementError, PlacementMode};

/// The synthetic root put around a fragment with several top-level elements.
const WRAPPER: &str = "fragment";

pub(super) fn parse(xml: &str) -> Result<Placement, PlacementError> {
    let wrapped;
    let doc = match Document::parse(xml) {
        Ok(doc) => doc,
        // A second top-level element (or text beside the first) is an unknown token at
        // the top level: read the input again as the content of a synthetic root. A
        // document with a declaration cannot be wrapped, and is malformed as it is.
        Err(e @ roxmltree::Error::UnknownToken(_)) if has_prolog(xml) => return Err(xml_error(xml, &e, 0)),
        Err(roxmltree::Error::UnknownToken(_)) => {
            wrapped = format!("<{WRAPPER}>{xml}</{WRAPPER}>");
            Document::parse(&wrapped).map_err(|e| xml_error(xml, &e, WRAPPER.len() + 2))?
        }
        Err(e) => return Err(xml_error(xml, &e, 0)),
    };
    let root = doc.root_element();
    if is(root, "vcpu") || is(root, "cputune") {
        read(std::iter::once(root))
    } else {
        read(root.children().filter(Node::is_element))
    }
}

/// Whether the text starts with an XML declaration (a DTD is refused before this matters).
fn has_prolog(xml: &str) -> bool {
    xml.trim_start().starts_with("<?xml")
}

/// Whether `node` is the element `name` in no namespace (libvirt's domain XML has none).
fn is(node: Node<'_, '_>, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace().is_none()
}

fn read<'a, 'input: 'a>(elements: impl Iterator<Item = Node<'a, 'input>>) -> Result<Placement, PlacementError> {
    let mut vcpu = None;
    let mut cputune = None;
    for node in elements {
        let slot = if is(node, "vcpu") {
            &mut vcpu
        } else if is(node, "cputune") {
            &mut cputune
        } else {
            continue;
        };
        if slot.replace(node).is_some() {
            return Err(PlacementError::DuplicateElement { element: format!("<{}>", node.tag_name().name()) });
        }
    }
    let vcpu = vcpu.ok_or(PlacementError::MissingVcpu)?;

    let text: String = vcpu.children().filter(Node::is_text).filter_map(|n| n.text()).collect();
    let max_vcpus =
        parse_count(&text).ok_or_else(|| PlacementError::InvalidVcpuCount { value: text.trim().to_owned() })?;
    let current = match vcpu.attribute("current") {
        None => None,
        Some(value) => Some(
            parse_count(value).ok_or_else(|| PlacementError::InvalidCurrent { value: value.to_owned(), max_vcpus })?,
        ),
    };
    let mode = match vcpu.attribute("placement") {
        None => PlacementMode::Static,
        Some(value) => value.parse()?,
    };
    let cpuset = vcpu.attribute("cpuset").map(str::to_owned);

    let mut vcpupins = BTreeMap::new();
    let mut emulatorpin = None;
    for node in cputune.iter().flat_map(|c| c.children()) {
        if is(node, "vcpupin") {
            let value = node.attribute("vcpu").ok_or_else(|| PlacementError::MissingAttribute {
                element: "<vcpupin>".to_owned(),
                attribute: "vcpu",
            })?;
            let id = parse_number(value).ok_or_else(|| PlacementError::InvalidVcpuId {
                element: format!("<vcpupin vcpu='{value}'>"),
                value: value.to_owned(),
            })?;
            let cpus = node.attribute("cpuset").ok_or_else(|| PlacementError::MissingAttribute {
                element: format!("<vcpupin vcpu='{id}'>"),
                attribute: "cpuset",
            })?;
            if vcpupins.insert(id, cpus.to_owned()).is_some() {
                return Err(PlacementError::DuplicateVcpupin { vcpu: id });
            }
        } else if is(node, "emulatorpin") {
            let cpus = node.attribute("cpuset").ok_or_else(|| PlacementError::MissingAttribute {
                element: "<emulatorpin>".to_owned(),
                attribute: "cpuset",
            })?;
            if emulatorpin.replace(cpus.to_owned()).is_some() {
                return Err(PlacementError::DuplicateElement { element: "<emulatorpin>".to_owned() });
            }
        }
    }

    let placement = Placement { max_vcpus, current, mode, cpuset, vcpupins, emulatorpin };
    placement.validate()?;
    Ok(placement)
}

/// A decimal number, whitespace around it allowed, no sign.
fn parse_number(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A count: a number from 1 up (the upper bounds are checked by `validate`).
fn parse_count(s: &str) -> Option<u32> {
    parse_number(s).filter(|&n| n > 0)
}

/// Turns the XML parser's error into ours, its position in `xml` (the wrapped text's
/// first line is `shift` characters longer).
fn xml_error(xml: &str, e: &roxmltree::Error, shift: usize) -> PlacementError {
    let message = match e {
        roxmltree::Error::UnexpectedCloseTag(open, close, _) if close == WRAPPER => {
            format!("element '{open}' is never closed")
        }
        roxmltree::Error::UnexpectedCloseTag(open, close, _) if open == WRAPPER => {
            format!("close tag '{close}' has no open tag")
        }
        _ => e.to_string(),
    };
    let (line, column) = match e {
        // Errors of a truncated document have no position: point at its end.
        roxmltree::Error::UnclosedRootNode | roxmltree::Error::UnexpectedEndOfStream => end_of(xml),
        roxmltree::Error::UnexpectedCloseTag(_, close, _) if close == WRAPPER => end_of(xml),
        _ => {
            let pos = e.pos();
            let column = if pos.row == 1 { (pos.col as usize).saturating_sub(shift).max(1) as u32 } else { pos.col };
            (pos.row, column)
        }
    };
    // The parser's text says "at ROW:COL" for the position given separately (and, for a
    // wrapped fragment, wrongly shifted).
    let at = format!(" at {}", e.pos());
    let message = message.replacen(&at, "", 1);
    PlacementError::Xml { line, column, message }
}

/// The 1-based line and column just past the end of `text`.
fn end_of(text: &str) -> (u32, u32) {
    let line = text.matches('\n').count() + 1;
    let last = text.rsplit('\n').next().unwrap_or("");
    (saturate(line), saturate(last.chars().count() + 1))
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
