//! Reading `<vcpu>` and `<cputune>` from domain XML or a fragment of it.

use std::collections::BTreeMap;

use roxmltree::Node;

use super::{Placement, PlacementError, PlacementMode};

pub(super) fn parse(xml: &str) -> Result<Placement, PlacementError> {
    let mut wrapped = String::new();
    let (doc, _) = crate::xml::parse(xml, &mut wrapped).map_err(|e| PlacementError::Xml {
        line: e.line,
        column: e.column,
        message: e.message,
    })?;
    let root = doc.root_element();
    if is(root, "vcpu") || is(root, "cputune") {
        read(std::iter::once(root))
    } else {
        read(root.children().filter(Node::is_element))
    }
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
