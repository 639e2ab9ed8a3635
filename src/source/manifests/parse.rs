//! Parsing one manifest file: YAML (one document at a time) or JSON (converted from its raw
//! text, a large file's documents on every core), each document an object or a `List`, every
//! error naming the file, the object and the field.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use serde_json::value::RawValue;

use super::super::selector::LabelFilter;
use crate::model::{Document, Kind, MapOnly, Object, ObjectKey};

/// A manifest that could not be read, named by file, object and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {object}: {}{reason}", file.display(), field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct ManifestError {
    /// The file.
    pub file: PathBuf,
    /// The object (`Service shop/web`) or document (`document 3`).
    pub object: String,
    /// The field, when one is to blame.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
    /// The object's identity, when known: its last good version is kept.
    pub identity: Option<(Kind, ObjectKey)>,
}

/// The good objects of one file and the errors of the rest.
pub type ParsedFile = (Vec<Object>, Vec<ManifestError>);

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// What `document` reads of an object before converting it, borrowed from the JSON text.
/// Anything unexpected here (a field of another type, a repeated key) sends the document
/// down the tree path instead, which reports it exactly.
#[derive(serde::Deserialize)]
struct Header<'a> {
    #[serde(rename = "apiVersion", borrow)]
    api_version: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    metadata: MapOnly<Meta<'a>>,
}

#[derive(Default, serde::Deserialize)]
struct Meta<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    namespace: Option<Cow<'a, str>>,
}

/// The `items` of a `List`, each still text.
#[derive(serde::Deserialize)]
struct Items<'a> {
    #[serde(borrow)]
    items: Vec<&'a RawValue>,
}

/// One document: a parsed tree (YAML, or JSON the header did not fit), or JSON text with
/// its header read.
enum Doc<'a> {
    Tree(Value),
    Text(&'a RawValue, Header<'a>),
}

/// Converts one JSON document from its text.
fn text_document(
    file: &Path,
    label: &str,
    raw: &RawValue,
    out: &mut ParsedFile,
    depth: usize,
    labels: Option<&LabelFilter>,
) {
    let doc = match serde_json::from_str::<MapOnly<Header>>(raw.get()) {
        Ok(MapOnly(header)) => Doc::Text(raw, header),
        Err(_) => match serde_json::from_str::<Value>(raw.get()) {
            Ok(value) => Doc::Tree(value),
            Err(e) => {
                out.1.push(ManifestError {
                    file: file.to_owned(),
                    object: label.to_owned(),
                    field: None,
                    reason: e.to_string(),
                    identity: None,
                });
                return;
            }
        },
    };
    document(file, label, doc, out, depth, labels);
}

/// Converts one document (an object or a `List`), appending objects and errors.
// One match over the document's shapes (object, `List`, unknown kind, bad apiVersion), each
// arm naming its own error with the file and the object.
#[allow(clippy::too_many_lines)]
fn document(
    file: &Path,
    label: &str,
    doc: Doc<'_>,
    out: &mut ParsedFile,
    depth: usize,
    labels: Option<&LabelFilter>,
) {
    let error = |object: String, field: Option<String>, reason: String, identity| ManifestError {
        file: file.to_owned(),
        object,
        field,
        reason,
        identity,
    };
    let (api_version, kind, name, namespace) = match &doc {
        Doc::Tree(value) if value.is_null() => return,
        Doc::Tree(value) => {
            let (Some(api_version), Some(kind)) =
                (str_at(value, &["apiVersion"]), str_at(value, &["kind"]))
            else {
                out.1.push(error(
                    label.to_owned(),
                    None,
                    "not a Kubernetes object (apiVersion and kind required)".into(),
                    None,
                ));
                return;
            };
            (
                api_version,
                kind,
                str_at(value, &["metadata", "name"]),
                str_at(value, &["metadata", "namespace"]),
            )
        }
        Doc::Text(_, h) => (
            &*h.api_version,
            &*h.kind,
            h.metadata.0.name.as_deref(),
            h.metadata.0.namespace.as_deref(),
        ),
    };
    if kind.ends_with("List") && depth == 0 {
        match doc {
            Doc::Tree(mut value) => {
                if let Some(Value::Array(items)) = value.get_mut("items").map(Value::take) {
                    for (i, item) in items.into_iter().enumerate() {
                        let label = format!("{label} item {i}");
                        document(file, &label, Doc::Tree(item), out, 1, labels);
                    }
                }
            }
            Doc::Text(raw, _) => match serde_json::from_str::<Items>(raw.get()) {
                Ok(list) => {
                    for (i, item) in list.items.into_iter().enumerate() {
                        text_document(file, &format!("{label} item {i}"), item, out, 1, labels);
                    }
                }
                Err(_) => {
                    if let Ok(value) = serde_json::from_str::<Value>(raw.get()) {
                        document(file, label, Doc::Tree(value), out, depth, labels);
                    }
                }
            },
        }
        return;
    }
    let Some(k) = Kind::of(api_version, kind) else {
        tracing::debug!(file = %file.display(), api_version, kind, "skipping kind clusterdns does not serve");
        return;
    };
    let name = name.unwrap_or_default();
    let namespace = if k.row().namespaced {
        namespace.unwrap_or("default")
    } else {
        ""
    };
    let object = if name.is_empty() {
        format!("{kind} ({label})")
    } else if namespace.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {namespace}/{name}")
    };
    let identity = (!name.is_empty()).then(|| (k, ObjectKey::new(namespace, name)));
    if k == Kind::Service
        && let Some(filter) = labels
    {
        let labels = match &doc {
            Doc::Tree(value) => labels_of(value),
            Doc::Text(raw, _) => serde_json::from_str::<Value>(raw.get())
                .map(|v| labels_of(&v))
                .unwrap_or_default(),
        };
        if !filter.matches(&labels) {
            // Not served: as if the file did not define it (a Service that stops matching is
            // removed like a deleted one).
            return;
        }
    }
    let converted = match doc {
        Doc::Tree(value) => k.convert(Document::Tree(value)),
        Doc::Text(raw, _) => k.convert(Document::Text(raw.get())),
    };
    match converted {
        Ok(obj) => out.0.push(obj),
        Err(e) => {
            let (field, reason) = (e.field, e.reason);
            let field = (!field.is_empty() && field != ".").then_some(field);
            out.1.push(error(object, field, reason, identity));
        }
    }
}

/// `metadata.labels` as strings (a non-string value counts as absent; conversion reports it).
fn labels_of(value: &Value) -> BTreeMap<String, String> {
    value
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// Below this many documents a file is converted on one thread.
const PARALLEL_DOCUMENTS: usize = 4096;

/// Converts `docs` (labelled `{prefix} {n}`, n from 1 or 0 as `first` says) into `out`, in
/// order; a large file is split into one run of documents per core.
fn text_documents(
    file: &Path,
    docs: &[&RawValue],
    prefix: &str,
    first: usize,
    out: &mut ParsedFile,
    labels: Option<&LabelFilter>,
) {
    let parts = crate::parallel::in_parts(docs, PARALLEL_DOCUMENTS, |start, part| {
        let mut out = ParsedFile::default();
        for (i, raw) in part.iter().enumerate() {
            let label = format!("{prefix} {}", first + start + i);
            text_document(file, &label, raw, &mut out, 0, labels);
        }
        out
    });
    for part in parts {
        // A part panics only on a bug; its documents are then reported as lost.
        let (objects, errors) = part.unwrap_or_else(|_| {
            let error = ManifestError {
                file: file.to_owned(),
                object: format!("{prefix}s"),
                field: None,
                reason: "internal error while converting".into(),
                identity: None,
            };
            (Vec::new(), vec![error])
        });
        out.0.extend(objects);
        out.1.extend(errors);
    }
}

/// A JSON manifest: one object (possibly a `List`), an array of objects, or objects one
/// after another (such as one per line). Each object is converted straight from its text; a
/// syntax error anywhere rejects the whole file.
fn parse_json(
    file: &Path,
    text: &str,
    out: &mut ParsedFile,
    labels: Option<&LabelFilter>,
) -> serde_json::Result<()> {
    if text.trim_start().starts_with('[') {
        let docs: Vec<&RawValue> = serde_json::from_str(text)?;
        text_documents(file, &docs, "item", 0, out, labels);
        return Ok(());
    }
    let docs = serde_json::Deserializer::from_str(text)
        .into_iter::<&RawValue>()
        .collect::<serde_json::Result<Vec<_>>>()?;
    text_documents(file, &docs, "document", 1, out, labels);
    Ok(())
}

/// Parses one manifest file. `Err` means the file as a whole is unreadable (its previous
/// objects should stay); `Ok` holds the good objects and the errors of the others.
pub fn parse_file(file: &Path, text: &str) -> Result<ParsedFile, Box<ManifestError>> {
    parse_file_filtered(file, text, None)
}

/// `parse_file`, keeping only the Services whose labels match `labels` (`--labels`).
pub fn parse_file_filtered(
    file: &Path,
    text: &str,
    labels: Option<&LabelFilter>,
) -> Result<ParsedFile, Box<ManifestError>> {
    let whole = |reason: String| {
        Box::new(ManifestError {
            file: file.to_owned(),
            object: "file".into(),
            field: None,
            reason,
            identity: None,
        })
    };
    let mut out: ParsedFile = (Vec::new(), Vec::new());
    let is_json = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        parse_json(file, text, &mut out, labels).map_err(|e| whole(e.to_string()))?;
        return Ok(out);
    }
    // Each document's tree lives only until it is converted; a syntax error in a later
    // document still rejects the whole file (the model objects so far are dropped).
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = <Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| whole(format!("document {}: {e}", i + 1)))?;
        document(
            file,
            &format!("document {}", i + 1),
            Doc::Tree(value),
            &mut out,
            0,
            labels,
        );
    }
    Ok(out)
}
