//! The text of a document, by file type: plain text and Markdown as they are, HTML without
//! its markup, CSV and JSON as text, PDF from its text layer (page by page), and Word
//! (`.docx`) from its paragraphs, Excel (`.xlsx`) sheet by sheet as comma-separated rows.

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
    Xlsx,
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
            "xlsx" => Format::Xlsx,
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
        Format::Xlsx => xlsx(bytes)
            .map(Parsed::text)
            .map_err(|e| unreadable("an Excel workbook", e)),
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
    let xml = zip_text(&mut zip, "word/document.xml")?.ok_or("it has no word/document.xml")?;
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

/// A member of a zip archive as text; `None` when the archive has no such member.
fn zip_text(
    zip: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    name: &str,
) -> Result<Option<String>, String> {
    let file = match zip.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    // A member inflates to at most the largest document: a zip bomb stops there.
    let mut s = String::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_string(&mut s)
        .map_err(|e| e.to_string())?;
    if s.len() > MAX_FILE_BYTES {
        return Err(format!("{name} inflates past 50 MB"));
    }
    Ok(Some(s))
}

/// The value of attribute `name` of an element.
fn attr(e: &quick_xml::events::BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name || a.key.local_name().as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// The column of a cell reference (`C7` → 2).
fn column_of(reference: &str) -> Option<usize> {
    let letters: String = reference
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    if letters.is_empty() {
        return None;
    }
    letters
        .chars()
        .try_fold(0usize, |n, c| {
            n.checked_mul(26)?
                .checked_add(c.to_ascii_uppercase() as usize - 'A' as usize + 1)
        })
        .map(|n| n - 1)
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

/// An Excel workbook's sheets in workbook order, each a `Sheet: name` line and its rows as
/// comma-separated values (shared, inline and formula strings, numbers, booleans), empty
/// cells kept in place so columns line up.
fn xlsx(bytes: &[u8]) -> Result<String, String> {
    use quick_xml::events::Event;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut shared: Vec<String> = Vec::new();
    if let Some(xml) = zip_text(&mut zip, "xl/sharedStrings.xml")? {
        let mut r = quick_xml::Reader::from_str(&xml);
        let (mut in_t, mut current) = (false, String::new());
        loop {
            match r.read_event().map_err(|e| e.to_string())? {
                Event::Start(e) if e.local_name().as_ref() == b"t" => in_t = true,
                Event::End(e) => match e.local_name().as_ref() {
                    b"t" => in_t = false,
                    b"si" => shared.push(std::mem::take(&mut current)),
                    _ => {}
                },
                Event::Text(t) if in_t => {
                    current.push_str(&t.unescape().map_err(|e| e.to_string())?)
                }
                Event::Eof => break,
                _ => {}
            }
        }
    }
    // Sheets by name, in workbook order, through the workbook's relationships.
    let workbook = zip_text(&mut zip, "xl/workbook.xml")?.ok_or("it has no xl/workbook.xml")?;
    let rels = zip_text(&mut zip, "xl/_rels/workbook.xml.rels")?.unwrap_or_default();
    let mut targets = std::collections::HashMap::new();
    let mut r = quick_xml::Reader::from_str(&rels);
    loop {
        match r.read_event().map_err(|e| e.to_string())? {
            Event::Empty(e) | Event::Start(e) if e.local_name().as_ref() == b"Relationship" => {
                if let (Some(id), Some(target)) = (attr(&e, b"Id"), attr(&e, b"Target")) {
                    let path = match target.strip_prefix('/') {
                        Some(absolute) => absolute.to_owned(),
                        None => format!("xl/{target}"),
                    };
                    targets.insert(id, path);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut sheets: Vec<(String, String)> = Vec::new();
    let mut r = quick_xml::Reader::from_str(&workbook);
    loop {
        match r.read_event().map_err(|e| e.to_string())? {
            Event::Empty(e) | Event::Start(e) if e.local_name().as_ref() == b"sheet" => {
                // The relationship id, whatever prefix the workbook gives its namespace.
                let id = attr(&e, b"id").unwrap_or_default();
                if let (Some(name), Some(path)) = (attr(&e, b"name"), targets.get(&id)) {
                    sheets.push((name, path.clone()));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut out = String::new();
    for (name, path) in sheets {
        let Some(xml) = zip_text(&mut zip, &path)? else {
            continue;
        };
        out.push_str(&format!("Sheet: {name}\n"));
        let mut r = quick_xml::Reader::from_str(&xml);
        let mut row: Vec<String> = Vec::new();
        let (mut kind, mut column, mut value) = (String::new(), 0usize, String::new());
        let mut in_value = false;
        loop {
            match r.read_event().map_err(|e| e.to_string())? {
                Event::Start(e) if e.local_name().as_ref() == b"c" => {
                    kind = attr(&e, b"t").unwrap_or_default();
                    column = attr(&e, b"r")
                        .and_then(|r| column_of(&r))
                        .unwrap_or(row.len());
                    value.clear();
                }
                Event::Start(e) if matches!(e.local_name().as_ref(), b"v" | b"t") => {
                    in_value = true
                }
                Event::Text(t) if in_value => {
                    value.push_str(&t.unescape().map_err(|e| e.to_string())?)
                }
                Event::End(e) => match e.local_name().as_ref() {
                    b"v" | b"t" => in_value = false,
                    b"c" => {
                        let text = match kind.as_str() {
                            "s" => value
                                .trim()
                                .parse::<usize>()
                                .ok()
                                .and_then(|i| shared.get(i).cloned())
                                .unwrap_or_default(),
                            "b" => if value.trim() == "1" { "TRUE" } else { "FALSE" }.to_owned(),
                            _ => value.clone(),
                        };
                        // Excel's last column is XFD (16,384): nothing past it is a cell.
                        if column < 16_384 {
                            if row.len() <= column {
                                row.resize(column + 1, String::new());
                            }
                            row[column] = text;
                        }
                    }
                    b"row" => {
                        if row.iter().any(|c| !c.is_empty()) {
                            let line: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
                            out.push_str(&line.join(","));
                            out.push('\n');
                        }
                        row.clear();
                        // Shared strings repeat for free in the file, not in the text.
                        if out.len() > MAX_FILE_BYTES {
                            return Err("its text exceeds 50 MB".into());
                        }
                    }
                    _ => {}
                },
                Event::Eof => break,
                _ => {}
            }
        }
        out.push('\n');
    }
    Ok(out.trim_end().to_owned())
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

    #[test]
    fn xlsx_sheets_as_rows() {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            use std::io::Write;
            let mut w = zip::ZipWriter::new(&mut buf);
            let mut add = |name: &str, body: &str| {
                w.start_file::<_, ()>(name, Default::default()).unwrap();
                w.write_all(body.as_bytes()).unwrap();
            };
            add(
                "xl/workbook.xml",
                r#"<workbook xmlns:r="r"><sheets><sheet name="Prices" sheetId="1" r:id="rId2"/><sheet name="Notes" sheetId="2" r:id="rId1"/></sheets></workbook>"#,
            );
            add(
                "xl/_rels/workbook.xml.rels",
                r#"<Relationships><Relationship Id="rId1" Target="worksheets/sheet2.xml"/><Relationship Id="rId2" Target="/xl/worksheets/sheet1.xml"/></Relationships>"#,
            );
            add(
                "xl/sharedStrings.xml",
                r#"<sst><si><t>Item</t></si><si><t>Price</t></si><si><r><t>Tea, </t></r><r><t>green</t></r></si></sst>"#,
            );
            add(
                "xl/worksheets/sheet1.xml",
                r#"<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row><row r="2"><c r="A2" t="s"><v>2</v></c><c r="C2"><v>4.5</v></c><c r="D2" t="b"><v>1</v></c></row><row r="3"/></sheetData></worksheet>"#,
            );
            add(
                "xl/worksheets/sheet2.xml",
                r#"<worksheet><sheetData><row><c t="inlineStr"><is><t>Ship &amp; store cold</t></is></c></row></sheetData></worksheet>"#,
            );
            w.finish().unwrap();
        }
        let p = parse("prices.xlsx", buf.get_ref()).unwrap();
        assert_eq!(
            p.text,
            "Sheet: Prices\nItem,Price\n\"Tea, green\",,4.5,TRUE\n\nSheet: Notes\nShip & store cold"
        );
        assert!(matches!(
            parse("bad.xlsx", b"not a zip"),
            Err(ParseError::Unreadable { .. })
        ));
        assert_eq!(column_of("AA10"), Some(26));
        assert_eq!(column_of("10"), None);
    }
}
