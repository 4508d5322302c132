//! The text of a document, by file type: plain text and Markdown as they are, HTML without
//! its markup, CSV and JSON as text, PDF from its text layer (page by page), and Word
//! (`.docx`) from its paragraphs.

use std::io::Read;
use std::ops::Range;

/// The largest file a knowledge base ingests (Bedrock's quota for one document).
pub const MAX_FILE_BYTES: usize = 50 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Html,
    Csv,
    Json,
    Pdf,
    Docx,
}

impl Format {
    /// The format of a file by its name's extension; `None` for a type knowledge bases do
    /// not ingest.
    pub fn of(name: &str) -> Option<Format> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "txt" | "text" => Format::Text,
            "md" | "markdown" => Format::Markdown,
            "html" | "htm" => Format::Html,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "pdf" => Format::Pdf,
            "docx" => Format::Docx,
            _ => return None,
        })
    }
}

/// A page of a paged document: its number (from 1) and the bytes of [`Parsed::text`] it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub number: u32,
    pub range: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub text: String,
    /// Empty for documents without pages.
    pub pages: Vec<Page>,
}

impl Parsed {
    fn text(text: String) -> Parsed {
        Parsed {
            text,
            pages: Vec::new(),
        }
    }

    /// The page holding byte `at` of the text.
    pub fn page_at(&self, at: usize) -> Option<u32> {
        self.pages
            .iter()
            .find(|p| p.range.contains(&at))
            .or(self.pages.last().filter(|p| at >= p.range.end))
            .map(|p| p.number)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("The file {0} exceeds the maximum file size of 50 MB supported by Amazon Bedrock.")]
    TooLarge(String),
    #[error("The file {0} is not a supported file type.")]
    Unsupported(String),
    #[error("The file {name} could not be read as {format}: {reason}")]
    Unreadable {
        name: String,
        format: &'static str,
        reason: String,
    },
}

/// The text of the file `name` holding `bytes`.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Parsed, ParseError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ParseError::TooLarge(name.to_owned()));
    }
    let format = Format::of(name).ok_or_else(|| ParseError::Unsupported(name.to_owned()))?;
    let unreadable = |format: &'static str, reason: String| ParseError::Unreadable {
        name: name.to_owned(),
        format,
        reason,
    };
    match format {
        Format::Text | Format::Markdown | Format::Csv | Format::Json => {
            Ok(Parsed::text(utf8(bytes)))
        }
        Format::Html => Ok(Parsed::text(html_text(&utf8(bytes)))),
        Format::Pdf => pdf(bytes).map_err(|e| unreadable("PDF", e)),
        Format::Docx => docx(bytes)
            .map(Parsed::text)
            .map_err(|e| unreadable("a Word document", e)),
    }
}

/// UTF-8 text, a leading byte-order mark dropped; invalid sequences become U+FFFD.
fn utf8(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// Elements whose content is not text a reader sees.
const HIDDEN: &[&str] = &["script", "style", "head", "noscript", "template", "svg"];
/// Elements that end a line of text.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "pre",
    "hr",
    "title",
    "dt",
    "dd",
];

/// The visible text of an HTML document: markup, comments, scripts and styles removed,
/// entities decoded, one line per block element.
pub fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut hidden: Option<String> = None;
    while let Some(lt) = rest.find('<') {
        if hidden.is_none() {
            out.push_str(&html_escape::decode_html_entities(&rest[..lt]));
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match &hidden {
            Some(h) if closing && *h == name => hidden = None,
            Some(_) => {}
            None if !closing && HIDDEN.contains(&name.as_str()) && !tag.ends_with('/') => {
                hidden = Some(name)
            }
            None if BLOCKS.contains(&name.as_str()) => out.push('\n'),
            None => {}
        }
    }
    if hidden.is_none() {
        out.push_str(&html_escape::decode_html_entities(rest));
    }
    tidy(&out)
}

/// Runs of spaces become one, lines are trimmed, and blank lines collapse to one.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = true;
    for line in text.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
            continue;
        }
        out.push_str(&line);
        out.push('\n');
        blank = false;
    }
    out.trim_end().to_owned()
}

/// A PDF's text layer, page by page. The parser is not ours and may panic on a malformed
/// file, which must fail that document only.
fn pdf(bytes: &[u8]) -> Result<Parsed, String> {
    let owned = bytes.to_vec();
    let pages =
        std::panic::catch_unwind(move || pdf_extract::extract_text_from_mem_by_pages(&owned))
            .map_err(|_| "the PDF is malformed".to_owned())?
            .map_err(|e| e.to_string())?;
    let mut text = String::new();
    let mut out = Vec::with_capacity(pages.len());
    for (i, page) in pages.iter().enumerate() {
        let page = tidy(page);
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        let start = text.len();
        text.push_str(&page);
        out.push(Page {
            number: i as u32 + 1,
            range: start..text.len(),
        });
    }
    if text.trim().is_empty() {
        return Err("the PDF has no text layer".into());
    }
    Ok(Parsed { text, pages: out })
}

/// A Word document's paragraphs, one per line (`word/document.xml`'s `w:t` runs).
fn docx(bytes: &[u8]) -> Result<String, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut xml = String::new();
    zip.by_name("word/document.xml")
        .map_err(|e| e.to_string())?
        .read_to_string(&mut xml)
        .map_err(|e| e.to_string())?;
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut out = String::new();
    let mut in_text = false;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            quick_xml::events::Event::Start(e) if e.name().as_ref() == b"w:t" => in_text = true,
            quick_xml::events::Event::End(e) => match e.name().as_ref() {
                b"w:t" => in_text = false,
                b"w:p" => out.push('\n'),
                _ => {}
            },
            quick_xml::events::Event::Empty(e) if e.name().as_ref() == b"w:tab" => out.push('\t'),
            quick_xml::events::Event::Empty(e) if e.name().as_ref() == b"w:br" => out.push('\n'),
            quick_xml::events::Event::Text(t) if in_text => {
                out.push_str(&t.unescape().map_err(|e| e.to_string())?)
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    Ok(tidy(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of("a/b/Report.PDF"), Some(Format::Pdf));
        assert_eq!(Format::of("notes.md"), Some(Format::Markdown));
        assert_eq!(Format::of("image.png"), None);
        assert_eq!(Format::of("no-extension"), None);
    }

    #[test]
    fn html_keeps_visible_text_only() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
            <h1>Caf&eacute; &amp; bar</h1><!-- hidden --><p>First   line.<br>Second</p>\
            <script>var x = '<p>';</script><p>Third</p></body></html>";
        assert_eq!(
            html_text(html),
            "Café & bar\n\nFirst line.\nSecond\n\nThird"
        );
    }

    #[test]
    fn text_files_drop_the_bom() {
        let p = parse("a.txt", b"\xEF\xBB\xBFhello").unwrap();
        assert_eq!(p.text, "hello");
        assert!(p.pages.is_empty());
    }

    #[test]
    fn unsupported_and_oversized_files_fail_with_reasons() {
        assert_eq!(
            parse("x.png", b"..."),
            Err(ParseError::Unsupported("x.png".into()))
        );
        let big = vec![b'a'; MAX_FILE_BYTES + 1];
        assert!(matches!(parse("x.txt", &big), Err(ParseError::TooLarge(_))));
    }

    /// A one-page PDF with a Helvetica text layer, as simple generators write it.
    fn pdf_of(lines: &[&str]) -> Vec<u8> {
        let mut ops = vec![
            "BT".to_owned(),
            "/F1 12 Tf".into(),
            "16 TL".into(),
            "72 740 Td".into(),
        ];
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                ops.push("T*".into());
            }
            ops.push(format!("({l}) Tj"));
        }
        ops.push("ET".into());
        let stream = ops.join("\n");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".into(),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
            format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (n, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n{body}\nendobj\n", n + 1).bytes());
        }
        let xref = out.len();
        out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
        for o in offsets {
            out.extend(format!("{o:010} 00000 n \n").bytes());
        }
        out.extend(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .bytes(),
        );
        out
    }

    #[test]
    fn pdf_text_layer_with_page_numbers() {
        let p = parse(
            "h.pdf",
            &pdf_of(&["Quasar Chess Club handbook.", "The mascot is Inkwell."]),
        )
        .unwrap();
        assert!(
            p.text.contains("Quasar Chess Club handbook."),
            "{:?}",
            p.text
        );
        assert!(p.text.contains("The mascot is Inkwell."), "{:?}", p.text);
        assert_eq!(p.pages.len(), 1);
        assert_eq!(p.page_at(3), Some(1));
    }

    #[test]
    fn malformed_pdf_fails_that_document() {
        assert!(matches!(
            parse("bad.pdf", b"%PDF-1.4\nnot really"),
            Err(ParseError::Unreadable { .. })
        ));
    }

    #[test]
    fn docx_paragraphs() {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            w.start_file::<_, ()>("word/document.xml", Default::default())
                .unwrap();
            use std::io::Write;
            w.write_all(
                br#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>Hello</w:t></w:r><w:r><w:t xml:space="preserve"> world &amp; co</w:t></w:r></w:p><w:p><w:r><w:t>Second</w:t></w:r></w:p></w:body></w:document>"#,
            )
            .unwrap();
            w.finish().unwrap();
        }
        let p = parse("a.docx", buf.get_ref()).unwrap();
        assert_eq!(p.text, "Hello world & co\nSecond");
    }
}
