//! The VG metadata text (LVM's config syntax) and the typed volume group read from it.
//!
//! Syntax: a section body is a list of `key = value` and `name { body }`; a value is a string
//! (`"..."`, `\` escapes the next character), an integer, a float, or an array `[ v, v, ... ]`
//! of those; `#` starts a comment. The text holds one top-level section named after the VG.
//! Parsing is bounded (nesting depth, text size) and never panics.

use super::pv_header::format_uuid;
use super::LvmError;

/// Deepest nesting accepted (LVM2 metadata uses 4: vg, logical_volumes, lv, segment).
pub const MAX_DEPTH: usize = 16;
/// Largest text accepted.
pub const MAX_TEXT: usize = super::mda::MAX_TEXT as usize;

/// A value of the config syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A float, as written.
    Float(String),
    /// A string (escapes resolved).
    Str(String),
    /// An array of scalars.
    Array(Vec<Value>),
}

/// One entry of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// `key = value`
    Value(Value),
    /// `name { ... }`
    Section(Section),
}

/// A section body: its entries in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// `(key, node)` in the order written.
    pub entries: Vec<(String, Node)>,
}

impl Section {
    /// The first value named `key`.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find_map(|(k, n)| match n {
            Node::Value(v) if k == key => Some(v),
            _ => None,
        })
    }
    /// The first subsection named `key`.
    pub fn section(&self, key: &str) -> Option<&Section> {
        self.entries.iter().find_map(|(k, n)| match n {
            Node::Section(s) if k == key => Some(s),
            _ => None,
        })
    }
    /// The subsections, in order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &Section)> {
        self.entries.iter().filter_map(|(k, n)| match n {
            Node::Section(s) => Some((k.as_str(), s)),
            _ => None,
        })
    }
    fn int(&self, key: &str) -> Option<i64> {
        match self.value(key) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }
    fn str(&self, key: &str) -> Option<&str> {
        match self.value(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
    fn strings(&self, key: &str) -> Vec<String> {
        match self.value(key) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| match v {
                    Value::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Writes the section in the config syntax (the inverse of [`parse`]).
    pub fn write(&self, out: &mut String, depth: usize) {
        fn scalar(v: &Value, out: &mut String) {
            match v {
                Value::Int(i) => out.push_str(&i.to_string()),
                Value::Float(f) => out.push_str(f),
                Value::Str(s) => {
                    out.push('"');
                    for c in s.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                }
                Value::Array(a) => {
                    out.push('[');
                    for (i, x) in a.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        scalar(x, out);
                    }
                    out.push(']');
                }
            }
        }
        for (k, n) in &self.entries {
            out.push_str(&"\t".repeat(depth));
            out.push_str(k);
            match n {
                Node::Value(v) => {
                    out.push_str(" = ");
                    scalar(v, out);
                    out.push('\n');
                }
                Node::Section(s) => {
                    out.push_str(" {\n");
                    s.write(out, depth + 1);
                    out.push_str(&"\t".repeat(depth));
                    out.push_str("}\n");
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    LBracket,
    RBracket,
    Comma,
    Eq,
    Str(String),
    Word(String),
}

struct Lexer<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
}

fn is_word_byte(b: u8) -> bool {
    !(b.is_ascii_whitespace() || b"#{}[]=,\"".contains(&b))
}

impl Lexer<'_> {
    fn err(&self, reason: impl Into<String>) -> LvmError {
        LvmError::Parse {
            line: self.line,
            reason: reason.into(),
        }
    }

    fn next(&mut self) -> Result<Option<Tok>, LvmError> {
        loop {
            let Some(&b) = self.text.get(self.at) else {
                return Ok(None);
            };
            match b {
                b'\n' => {
                    self.line += 1;
                    self.at += 1;
                }
                b'#' => {
                    while self.text.get(self.at).is_some_and(|&c| c != b'\n') {
                        self.at += 1;
                    }
                }
                _ if b.is_ascii_whitespace() || b == 0 => self.at += 1,
                _ => break,
            }
        }
        let b = self.text[self.at];
        self.at += 1;
        Ok(Some(match b {
            b'{' => Tok::Open,
            b'}' => Tok::Close,
            b'[' => Tok::LBracket,
            b']' => Tok::RBracket,
            b',' => Tok::Comma,
            b'=' => Tok::Eq,
            b'"' => {
                let mut s = Vec::new();
                loop {
                    match self.text.get(self.at) {
                        None => return Err(self.err("string without its closing quote")),
                        Some(b'"') => {
                            self.at += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let Some(&c) = self.text.get(self.at + 1) else {
                                return Err(self.err("string without its closing quote"));
                            };
                            s.push(c);
                            self.at += 2;
                        }
                        Some(&c) => {
                            if c == b'\n' {
                                self.line += 1;
                            }
                            s.push(c);
                            self.at += 1;
                        }
                    }
                }
                Tok::Str(String::from_utf8_lossy(&s).into_owned())
            }
            _ => {
                let start = self.at - 1;
                while self.text.get(self.at).is_some_and(|&c| is_word_byte(c)) {
                    self.at += 1;
                }
                Tok::Word(String::from_utf8_lossy(&self.text[start..self.at]).into_owned())
            }
        }))
    }
}

struct Parser<'a> {
    lex: Lexer<'a>,
    peeked: Option<Option<Tok>>,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<Option<&Tok>, LvmError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex.next()?);
        }
        Ok(self.peeked.as_ref().and_then(|t| t.as_ref()))
    }
    fn take(&mut self) -> Result<Option<Tok>, LvmError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex.next(),
        }
    }

    fn scalar(&mut self, t: Tok) -> Result<Value, LvmError> {
        match t {
            Tok::Str(s) => Ok(Value::Str(s)),
            Tok::Word(w) => {
                if let Ok(i) = w.parse::<i64>() {
                    Ok(Value::Int(i))
                } else if w.parse::<f64>().is_ok()
                    && w.bytes()
                        .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
                {
                    Ok(Value::Float(w))
                } else {
                    Err(self
                        .lex
                        .err(format!("value {w:?} is neither a number nor a string")))
                }
            }
            t => Err(self.lex.err(format!("expected a value, found {t:?}"))),
        }
    }

    fn value(&mut self) -> Result<Value, LvmError> {
        match self.take()? {
            Some(Tok::LBracket) => {
                let mut items = Vec::new();
                loop {
                    match self.take()? {
                        Some(Tok::RBracket) => return Ok(Value::Array(items)),
                        Some(t) => {
                            items.push(self.scalar(t)?);
                            match self.take()? {
                                Some(Tok::Comma) => {}
                                Some(Tok::RBracket) => return Ok(Value::Array(items)),
                                t => {
                                    return Err(self
                                        .lex
                                        .err(format!("expected , or ] in an array, found {t:?}")))
                                }
                            }
                        }
                        None => return Err(self.lex.err("array without its closing ]")),
                    }
                }
            }
            Some(t) => self.scalar(t),
            None => Err(self.lex.err("text ends where a value should be")),
        }
    }

    fn body(&mut self, depth: usize) -> Result<Section, LvmError> {
        if depth > MAX_DEPTH {
            return Err(self
                .lex
                .err(format!("sections nested deeper than {MAX_DEPTH}")));
        }
        let mut s = Section::default();
        loop {
            let key = match self.peek()? {
                None => {
                    if depth > 0 {
                        return Err(self.lex.err("section without its closing }"));
                    }
                    return Ok(s);
                }
                Some(Tok::Close) => {
                    if depth == 0 {
                        return Err(self.lex.err("} without a section"));
                    }
                    self.take()?;
                    return Ok(s);
                }
                Some(Tok::Word(_) | Tok::Str(_)) => match self.take()? {
                    Some(Tok::Word(w) | Tok::Str(w)) => w,
                    _ => unreachable!("peeked a key"),
                },
                Some(t) => {
                    let t = format!("{t:?}");
                    return Err(self.lex.err(format!("expected a key, found {t}")));
                }
            };
            match self.take()? {
                Some(Tok::Eq) => {
                    let v = self.value()?;
                    s.entries.push((key, Node::Value(v)));
                }
                Some(Tok::Open) => {
                    let sub = self.body(depth + 1)?;
                    s.entries.push((key, Node::Section(sub)));
                }
                t => {
                    return Err(self
                        .lex
                        .err(format!("expected = or {{ after {key:?}, found {t:?}")))
                }
            }
        }
    }
}

/// Parses config text into its top-level section.
pub fn parse(text: &[u8]) -> Result<Section, LvmError> {
    if text.len() > MAX_TEXT {
        return Err(LvmError::Parse {
            line: 0,
            reason: format!("text of {} bytes is too large", text.len()),
        });
    }
    let mut p = Parser {
        lex: Lexer {
            text,
            at: 0,
            line: 1,
        },
        peeked: None,
    };
    p.body(0)
}

/// A physical volume of the VG metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalVolume {
    /// Its key in the metadata (`pv0`), which segments refer to.
    pub key: String,
    /// PV UUID as LVM prints it (6-4-4-4-4-4-6).
    pub id: String,
    /// The device it was last seen on (a hint only).
    pub device: Option<String>,
    /// First sector of the first physical extent.
    pub pe_start: u64,
    /// Number of physical extents.
    pub pe_count: u64,
    /// Device size in sectors, when recorded.
    pub dev_size: Option<u64>,
    /// `status` flags (`ALLOCATABLE`, `MISSING` in older versions).
    pub status: Vec<String>,
    /// `flags` (`MISSING`).
    pub flags: Vec<String>,
}

/// One segment of a logical volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Its section name (`segment1`).
    pub name: String,
    /// First logical extent.
    pub start_extent: u64,
    /// Logical extents.
    pub extent_count: u64,
    /// Segment type (`striped`, `thin-pool`, ...).
    pub seg_type: String,
    /// Number of stripes (`striped`).
    pub stripe_count: Option<u64>,
    /// Stripe size in sectors (`striped` with more than one stripe).
    pub stripe_size: Option<u64>,
    /// The `stripes` or `mirrors` list: `(PV key or LV name, first extent)` pairs.
    pub areas: Vec<(String, u64)>,
    /// Every other string the segment names, with its key (sub-volumes: `pool`,
    /// `metadata`, `cow_store`, `raids`, ...).
    pub refs: Vec<(String, String)>,
}

/// A logical volume of the VG metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvMeta {
    /// Its name.
    pub name: String,
    /// Its UUID.
    pub id: String,
    /// `status` flags (`READ`, `WRITE`, `VISIBLE`, `LOCKED`, ...).
    pub status: Vec<String>,
    /// `flags`.
    pub flags: Vec<String>,
    /// Its segments in the order written.
    pub segments: Vec<Segment>,
}

impl LvMeta {
    /// True when users see it (`VISIBLE` in its status): hidden LVs are the parts of others.
    pub fn visible(&self) -> bool {
        self.status.iter().any(|s| s == "VISIBLE")
    }
}

/// A volume group as its metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeGroup {
    /// Its name.
    pub name: String,
    /// Its UUID (6-4-4-4-4-4-6).
    pub id: String,
    /// The metadata's sequence number (higher is newer).
    pub seqno: u64,
    /// Extent size in sectors.
    pub extent_size: u64,
    /// `status` flags.
    pub status: Vec<String>,
    /// `flags`.
    pub flags: Vec<String>,
    /// Its physical volumes.
    pub pvs: Vec<PhysicalVolume>,
    /// Its logical volumes.
    pub lvs: Vec<LvMeta>,
}

/// The greatest number of extents or sectors accepted (2^53: no overflow once multiplied
/// by an extent size in bytes below 2^10 sectors... checked again where multiplied).
fn uint(s: &Section, key: &str, what: &str) -> Result<u64, LvmError> {
    match s.int(key) {
        Some(i) if i >= 0 => Ok(i as u64),
        Some(i) => Err(LvmError::Metadata(format!(
            "{what}: {key} = {i} is negative"
        ))),
        None => Err(LvmError::Metadata(format!("{what}: no integer {key}"))),
    }
}

fn segment(name: &str, s: &Section, what: &str) -> Result<Segment, LvmError> {
    let what = format!("{what} {name}");
    let seg_type = s
        .str("type")
        .ok_or_else(|| LvmError::Metadata(format!("{what}: no type")))?
        .to_string();
    let opt = |k: &str| s.int(k).and_then(|i| u64::try_from(i).ok());
    let mut areas = Vec::new();
    let mut refs = Vec::new();
    for (k, n) in &s.entries {
        let Node::Value(v) = n else { continue };
        match (k.as_str(), v) {
            ("type", _) => {}
            ("stripes" | "mirrors", Value::Array(a)) => {
                for pair in a.chunks(2) {
                    match pair {
                        [Value::Str(name), Value::Int(e)] if *e >= 0 => {
                            areas.push((name.clone(), *e as u64))
                        }
                        _ => {
                            return Err(LvmError::Metadata(format!(
                                "{what}: {k} is not a list of (name, extent) pairs"
                            )))
                        }
                    }
                }
            }
            (_, Value::Str(x)) => refs.push((k.clone(), x.clone())),
            (_, Value::Array(a)) => {
                for x in a {
                    if let Value::Str(x) = x {
                        refs.push((k.clone(), x.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Segment {
        name: name.to_string(),
        start_extent: uint(s, "start_extent", &what)?,
        extent_count: uint(s, "extent_count", &what)?,
        seg_type,
        stripe_count: opt("stripe_count"),
        stripe_size: opt("stripe_size"),
        areas,
        refs,
    })
}

/// The most segments or volumes read from one metadata text (each costs text bytes anyway).
const MAX_ITEMS: usize = 1 << 16;

impl VolumeGroup {
    /// Reads the volume group from parsed metadata text.
    pub fn from_config(top: &Section) -> Result<VolumeGroup, LvmError> {
        let (name, vg) = top
            .sections()
            .find(|(_, s)| s.value("seqno").is_some())
            .ok_or_else(|| LvmError::Metadata("no volume group section".into()))?;
        let what = format!("VG {name}");
        let id = vg
            .str("id")
            .ok_or_else(|| LvmError::Metadata(format!("{what}: no id")))?;
        let extent_size = uint(vg, "extent_size", &what)?;
        if extent_size == 0 || extent_size > 1 << 40 {
            return Err(LvmError::Metadata(format!(
                "{what}: extent_size {extent_size} sectors"
            )));
        }
        let mut pvs = Vec::new();
        if let Some(list) = vg.section("physical_volumes") {
            for (key, p) in list.sections().take(MAX_ITEMS) {
                let w = format!("{what} PV {key}");
                pvs.push(PhysicalVolume {
                    key: key.to_string(),
                    id: format_uuid(
                        p.str("id")
                            .ok_or_else(|| LvmError::Metadata(format!("{w}: no id")))?,
                    ),
                    device: p.str("device").map(str::to_string),
                    pe_start: uint(p, "pe_start", &w)?,
                    pe_count: uint(p, "pe_count", &w)?,
                    dev_size: p.int("dev_size").and_then(|i| u64::try_from(i).ok()),
                    status: p.strings("status"),
                    flags: p.strings("flags"),
                });
            }
        }
        let mut lvs = Vec::new();
        if let Some(list) = vg.section("logical_volumes") {
            for (lv_name, l) in list.sections().take(MAX_ITEMS) {
                let w = format!("{what} LV {lv_name}");
                let segments = l
                    .sections()
                    .filter(|(k, _)| k.starts_with("segment"))
                    .take(MAX_ITEMS)
                    .map(|(k, s)| segment(k, s, &w))
                    .collect::<Result<Vec<_>, _>>()?;
                lvs.push(LvMeta {
                    name: lv_name.to_string(),
                    id: l.str("id").unwrap_or_default().to_string(),
                    status: l.strings("status"),
                    flags: l.strings("flags"),
                    segments,
                });
            }
        }
        Ok(VolumeGroup {
            name: name.to_string(),
            id: format_uuid(id),
            seqno: uint(vg, "seqno", &what)?,
            extent_size,
            status: vg.strings("status"),
            flags: vg.strings("flags"),
            pvs,
            lvs,
        })
    }

    /// Parses metadata text into a volume group.
    pub fn parse(text: &[u8]) -> Result<VolumeGroup, LvmError> {
        VolumeGroup::from_config(&parse(text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REAL: &str = r#"vg1 {
id = "eG2Wb9-jW9B-woHO-IeXx-Dcbs-4UVw-NwWHYT"
seqno = 5
format = "lvm2"
status = ["RESIZEABLE", "READ", "WRITE"]
flags = []
extent_size = 8192
max_lv = 0

physical_volumes {

pv0 {
id = "haWJ1t-LDYF-EaDZ-kXbj-6CjL-z1MA-917FDN"
device = "/dev/loop0"	# Hint only

status = ["ALLOCATABLE"]
flags = []
dev_size = 131072
pe_start = 2048
pe_count = 15
}
}

logical_volumes {

root {
id = "N91I4m-FN1S-bbzK-r2Aw-rOiF-CTc9-PCrnLV"
status = ["READ", "WRITE", "VISIBLE"]
flags = []
segment_count = 2

segment1 {
start_extent = 0
extent_count = 2

type = "striped"
stripe_count = 1

stripes = [
"pv0", 2
]
}
segment2 {
start_extent = 2
extent_count = 2

type = "striped"
stripe_count = 1

stripes = [
"pv0", 5
]
}
}
}

}
# Generated by LVM2 version 2.03.16(2) (2022-05-18): Wed Dec  2 09:48:25 2026

contents = "Text Format Volume Group"
version = 1

description = "Write from lvextend -L 16M vg1/root."
creation_time = 1796204905	# Wed Dec  2 09:48:25 2026
"#;

    #[test]
    fn real_metadata_reads_as_a_typed_vg() {
        let vg = VolumeGroup::parse(REAL.as_bytes()).unwrap();
        assert_eq!(vg.name, "vg1");
        assert_eq!(vg.seqno, 5);
        assert_eq!(vg.extent_size, 8192);
        assert_eq!(vg.pvs[0].pe_start, 2048);
        assert_eq!(vg.pvs[0].device.as_deref(), Some("/dev/loop0"));
        let root = &vg.lvs[0];
        assert!(root.visible());
        assert_eq!(root.segments.len(), 2);
        assert_eq!(root.segments[1].areas, vec![("pv0".to_string(), 5)]);
        assert_eq!(root.segments[1].seg_type, "striped");
    }

    #[test]
    fn escapes_comments_and_floats() {
        let s = parse(
            br#"a = "x\"y\\z" # c
b = [1, -2, 0.5, "s"]
c { d = 1 }"#,
        )
        .unwrap();
        assert_eq!(s.value("a"), Some(&Value::Str("x\"y\\z".into())));
        assert_eq!(
            s.value("b"),
            Some(&Value::Array(vec![
                Value::Int(1),
                Value::Int(-2),
                Value::Float("0.5".into()),
                Value::Str("s".into())
            ]))
        );
        assert_eq!(s.section("c").unwrap().value("d"), Some(&Value::Int(1)));
    }

    #[test]
    fn depth_and_shape_errors() {
        let deep = "a {".repeat(MAX_DEPTH + 2) + &"}".repeat(MAX_DEPTH + 2);
        assert!(parse(deep.as_bytes()).is_err());
        let ok = "a {".repeat(MAX_DEPTH) + &"}".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
        for bad in [
            "a = ",
            "a {",
            "}",
            "a = [1",
            "a = \"x",
            "= 1",
            "a b",
            "a = [[1]]",
            "a = x",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    fn key() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_.+-]{0,8}"
    }
    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::Int),
            "[ -~\u{e9}\n]{0,12}".prop_map(Value::Str),
            (0u32..1000, 0u32..1000).prop_map(|(a, b)| Value::Float(format!("{a}.{b}"))),
        ]
    }
    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            scalar(),
            proptest::collection::vec(scalar(), 0..5).prop_map(Value::Array)
        ]
    }
    fn section() -> impl Strategy<Value = Section> {
        let leaf = proptest::collection::vec((key(), value().prop_map(Node::Value)), 0..5)
            .prop_map(|entries| Section { entries });
        leaf.prop_recursive(4, 40, 5, |inner| {
            proptest::collection::vec(
                (
                    key(),
                    prop_oneof![value().prop_map(Node::Value), inner.prop_map(Node::Section)],
                ),
                0..5,
            )
            .prop_map(|entries| Section { entries })
        })
    }

    proptest! {
        #[test]
        fn generated_configs_round_trip(s in section()) {
            let mut text = String::new();
            s.write(&mut text, 0);
            prop_assert_eq!(parse(text.as_bytes()).unwrap(), s);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = VolumeGroup::parse(&b);
        }

        #[test]
        fn mutated_real_metadata_never_panics(at in 0usize..2000, byte in any::<u8>()) {
            let mut b = REAL.as_bytes().to_vec();
            let i = at % b.len();
            b[i] = byte;
            let _ = VolumeGroup::parse(&b);
        }
    }
}
