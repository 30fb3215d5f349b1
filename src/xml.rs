//! Reading libvirt XML that may be a whole document or a fragment of several top-level
//! elements, with errors positioned in the caller's own text (shared by the placement and
//! the guest `<cpu>` readers).

use roxmltree::Document;

/// The synthetic root put around a fragment with several top-level elements.
const WRAPPER: &str = "fragment";

/// A malformed text: where (1-based line and column, in characters) and what.
#[derive(Debug)]
pub(crate) struct XmlError {
    pub(crate) line: u32,
    pub(crate) column: u32,
    pub(crate) message: String,
}

/// Parses `xml` as a document, or, when it has several top-level elements (or text beside
/// one), as the content of a synthetic root kept in `wrapped`. Returns the document and how
/// many characters the first line was shifted by (0, or the wrapper's open tag).
///
/// A document with an XML declaration cannot be wrapped, and is malformed as it is.
pub(crate) fn parse<'a>(xml: &'a str, wrapped: &'a mut String) -> Result<(Document<'a>, usize), XmlError> {
    match Document::parse(xml) {
        Ok(doc) => Ok((doc, 0)),
        Err(e @ roxmltree::Error::UnknownToken(_)) if xml.trim_start().starts_with("<?xml") => Err(locate(xml, &e, 0)),
        Err(roxmltree::Error::UnknownToken(_)) => {
            *wrapped = format!("<{WRAPPER}>{xml}</{WRAPPER}>");
            let shift = WRAPPER.len() + 2;
            Document::parse(wrapped).map(|doc| (doc, shift)).map_err(|e| locate(xml, &e, shift))
        }
        Err(e) => Err(locate(xml, &e, 0)),
    }
}

/// The parser's error, its position in `xml` (the wrapped text's first line is `shift`
/// characters longer).
fn locate(xml: &str, e: &roxmltree::Error, shift: usize) -> XmlError {
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
    let message = message.replacen(&format!(" at {}", e.pos()), "", 1);
    XmlError { line, column, message }
}

/// The 1-based line and column just past the end of `text`.
fn end_of(text: &str) -> (u32, u32) {
    let line = text.matches('\n').count() + 1;
    let last = text.rsplit('\n').next().unwrap_or("");
    (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(last.chars().count() + 1).unwrap_or(u32::MAX))
}
