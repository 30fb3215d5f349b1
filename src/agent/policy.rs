//! Policies: libvirt domain XML files, and which running domain each one is for.

use std::fmt;
use std::path::{Path, PathBuf};

use roxmltree::{Document, Node};

use crate::error::{Error, Result, Uuid};
use crate::placement::{Placement, PlacementError};

/// A placement policy and the domain it is for: a libvirt domain XML's `<name>` and
/// `<uuid>` with its [`Placement`].
///
/// # Which domain a policy is for
/// A policy with a `<uuid>` is for the domain whose handle (Xen's uuid) is that uuid,
/// whatever its name: **the uuid wins** when the two disagree, as libvirt identifies a
/// domain by its uuid and a name can be reused by another domain. A policy without a
/// `<uuid>` is for the domain of that `<name>`. A policy with neither is for no domain
/// (a fragment given to `xenvcpu apply` is checked against nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Where it came from: a file's path, or a description.
    pub source: String,
    /// `<name>`.
    pub name: Option<String>,
    /// `<uuid>`.
    pub uuid: Option<Uuid>,
    /// `<vcpu>` and `<cputune>`.
    pub placement: Placement,
}

/// Why a policy was refused or is not for a domain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{file}: cannot read it: {error}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// The XML or its placement is wrong ([`PlacementError::Xml`] has the line and column).
    #[error("{source_name}: {error}")]
    Placement {
        /// The file.
        source_name: String,
        /// What is wrong.
        error: PlacementError,
    },
    /// `<uuid>` is not a UUID.
    #[error("{source_name}: <uuid>: {message}")]
    BadUuid {
        /// The file.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// The document names no domain: neither `<name>` nor `<uuid>`.
    #[error("{source_name}: names no domain: a policy file needs a <name> or a <uuid>")]
    NoDomain {
        /// The file.
        source_name: String,
    },
    /// Several policies are for one domain: none of them is applied to it.
    #[error("domain {domain}: {} policies are for it ({}); none is applied until one is left", sources.len(), sources.join(", "))]
    Conflict {
        /// The domain, by name.
        domain: String,
        /// The policies.
        sources: Vec<String>,
    },
}

/// Which of a policy's `<uuid>` and `<name>` matched a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// The uuid.
    Uuid,
    /// The name (the policy has no `<uuid>`).
    Name,
}

impl Policy {
    /// A policy read from libvirt domain XML (a whole `<domain>`, whose `<name>` and
    /// `<uuid>` say which domain it is for, or a fragment, which names none).
    ///
    /// # Errors
    /// [`PolicyError::Placement`] (malformed XML with its line and column, or a wrong
    /// placement); [`PolicyError::BadUuid`].
    pub fn from_xml(source: impl Into<String>, xml: &str) -> std::result::Result<Policy, PolicyError> {
        let source = source.into();
        let placement =
            Placement::from_xml(xml).map_err(|error| PolicyError::Placement { source_name: source.clone(), error })?;
        let (mut name, mut uuid) = (None, None);
        // A fragment of several elements does not parse as a document; it names no domain.
        if let Ok(doc) = Document::parse(xml) {
            let root = doc.root_element();
            if root.tag_name().name() == "domain" {
                name = child_text(root, "name");
                if let Some(text) = child_text(root, "uuid") {
                    let parsed = text
                        .parse::<Uuid>()
                        .map_err(|message| PolicyError::BadUuid { source_name: source.clone(), message })?;
                    uuid = Some(parsed);
                }
            }
        }
        Ok(Policy { source, name, uuid, placement })
    }

    /// Reads a policy file.
    ///
    /// # Errors
    /// [`PolicyError::Io`] and those of [`Policy::from_xml`].
    pub fn from_file(path: &Path) -> std::result::Result<Policy, PolicyError> {
        let xml = std::fs::read_to_string(path).map_err(|error| PolicyError::Io { file: path.to_path_buf(), error })?;
        Policy::from_xml(path.display().to_string(), &xml)
    }

    /// A policy for the domain named `name`.
    pub fn for_name(name: impl Into<String>, placement: Placement) -> Policy {
        let name = name.into();
        Policy { source: format!("the policy of {name}"), name: Some(name), uuid: None, placement }
    }

    /// Whether the policy is for the domain of this name and uuid, and by which: the uuid
    /// when the policy has one, else the name.
    pub fn matches(&self, name: Option<&str>, uuid: Uuid) -> Option<MatchedBy> {
        match (&self.uuid, &self.name) {
            (Some(mine), _) => (*mine == uuid).then_some(MatchedBy::Uuid),
            (None, Some(mine)) => (name == Some(mine.as_str())).then_some(MatchedBy::Name),
            (None, None) => None,
        }
    }

    /// Checks that the policy names no other domain than this one: its `<name>` (if any)
    /// is `name` and its `<uuid>` (if any) is `uuid`. Stricter than [`Policy::matches`],
    /// for applying one file to one domain by hand.
    ///
    /// # Errors
    /// [`Error::PolicyForAnotherDomain`].
    pub fn check_for(&self, domain: &str, name: Option<&str>, uuid: Uuid) -> Result<()> {
        let mut differs = Vec::new();
        if let Some(mine) = &self.name {
            if name != Some(mine.as_str()) {
                differs.push(format!("<name>{mine}</name> (the domain is named {})", name.unwrap_or("nothing")));
            }
        }
        if let Some(mine) = self.uuid {
            if mine != uuid {
                differs.push(format!("<uuid>{mine}</uuid> (the domain's is {uuid})"));
            }
        }
        if differs.is_empty() {
            return Ok(());
        }
        Err(Error::PolicyForAnotherDomain {
            source_name: self.source.clone(),
            domain: domain.to_owned(),
            differs: differs.join(" and "),
        })
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn child_text(node: Node<'_, '_>, name: &str) -> Option<String> {
    let child = node.children().find(|n| n.is_element() && n.tag_name().name() == name)?;
    let text: String = child.children().filter_map(|n| n.text()).collect();
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// The policies of a directory, with the files that were refused.
#[derive(Debug, Default)]
pub struct PolicyDir {
    /// The directory.
    pub dir: PathBuf,
    /// The policies read, in file name order.
    pub policies: Vec<Policy>,
    /// The files refused, each with why (they are skipped; the others still apply).
    pub problems: Vec<PolicyError>,
}

impl PolicyDir {
    /// Reads every `*.xml` file directly in `dir`, in name order, as libvirt's libxl
    /// driver keeps its domains in `/etc/libvirt/libxl` (its `autostart/` subdirectory of
    /// links to the same files, and anything not ending in `.xml`, is not read). A file
    /// that does not parse, or names no domain, is reported and skipped.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the directory itself cannot be read.
    pub fn load(dir: &Path) -> Result<PolicyDir> {
        let unreadable = |e: std::io::Error| {
            Error::InvalidArgument(format!("policy directory {}: cannot read it: {e}", dir.display()))
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(unreadable)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "xml") && p.is_file())
            .collect();
        files.sort();
        let mut out = PolicyDir { dir: dir.to_path_buf(), policies: Vec::new(), problems: Vec::new() };
        for file in files {
            match Policy::from_file(&file) {
                Ok(p) if p.name.is_none() && p.uuid.is_none() => {
                    out.problems.push(PolicyError::NoDomain { source_name: p.source })
                }
                Ok(p) => out.policies.push(p),
                Err(e) => out.problems.push(e),
            }
        }
        Ok(out)
    }
}

/// The policy among `policies` for the domain of `name` and `uuid`: the one whose uuid is
/// the domain's, else the one without a uuid whose name is the domain's. Two at the same
/// rank are a [`PolicyError::Conflict`].
///
/// # Errors
/// [`PolicyError::Conflict`].
pub fn find<'a>(
    policies: &'a [Policy],
    name: Option<&str>,
    uuid: Uuid,
) -> std::result::Result<Option<(&'a Policy, MatchedBy)>, PolicyError> {
    for rank in [MatchedBy::Uuid, MatchedBy::Name] {
        let found: Vec<&Policy> = policies.iter().filter(|p| p.matches(name, uuid) == Some(rank)).collect();
        match found.as_slice() {
            [] => continue,
            [one] => return Ok(Some((one, rank))),
            many => {
                return Err(PolicyError::Conflict {
                    domain: name.map_or_else(|| uuid.to_string(), str::to_owned),
                    sources: many.iter().map(|p| p.source.clone()).collect(),
                })
            }
        }
    }
    Ok(None)
}

/// The policies that name this domain by `<name>` but carry another domain's `<uuid>`:
/// not applied (the uuid wins), worth a warning.
pub fn shadowed<'a>(policies: &'a [Policy], name: &str, uuid: Uuid) -> impl Iterator<Item = &'a Policy> + 'a {
    let name = name.to_owned();
    policies.iter().filter(move |p| p.name.as_deref() == Some(name.as_str()) && p.uuid.is_some_and(|u| u != uuid))
}
