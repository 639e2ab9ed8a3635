//! What reading one object from the API costs: a watch event of an EndpointSlice with 100
//! endpoints (24 KB), read five ways.
//!
//! - `dynamic_object`: kube's `DynamicObject` (serde buffers its flattened fields), the tree
//!   rebuilt with the metadata written back, then the k8s-openapi type read from it tracking
//!   the path: how clusterdns read API objects before `source::api_object`;
//! - `tree_then_typed`: one `serde_json::Value`, then k8s-openapi's type read from it by
//!   reference, as `Document::Tree` did before the model read only the fields DNS uses
//!   (`model::fields`);
//! - `tree_then_model`: one tree through `Kind::convert`, the model object included, as
//!   `ApiObject<Tree>` is for a server that writes an event's object before its type;
//! - `text_then_model`: the object kept as its text, then read through `Kind::convert`, as
//!   `ApiObject<Text>` is from lists (streaming and paged) and watches;
//! - `typed_from_text`: k8s-openapi's type straight from the watch event's text, every field
//!   built (a decoder of typed objects fails a whole list page on one bad object, which text
//!   and tree do not).
//!
//!   cargo bench --bench api_decode
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use clusterdns::model::{Document, Kind};
use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::DynamicObject;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// A watch event as the API server writes it: the type, then the object.
#[derive(Deserialize)]
struct Event<T> {
    #[serde(rename = "type")]
    _kind: String,
    object: T,
}

fn slice_event(endpoints: usize) -> String {
    let endpoints: Vec<String> = (0..endpoints)
        .map(|i| {
            format!(
                r#"{{"addresses":["10.{}.{}.{}"],"conditions":{{"ready":true,"serving":true,"terminating":false}},"nodeName":"node-{}","targetRef":{{"kind":"Pod","name":"web-{i}","namespace":"shop","uid":"5f1c7a2e-0000-4000-8000-{i:012}"}},"zone":"zone-a"}}"#,
                i / 65536,
                (i / 256) % 256,
                i % 256,
                i % 50,
            )
        })
        .collect();
    format!(
        r#"{{"type":"ADDED","object":{{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{{"name":"web-abcde","namespace":"shop","resourceVersion":"12345","uid":"u","labels":{{"kubernetes.io/service-name":"web","endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"}},"ownerReferences":[{{"apiVersion":"v1","kind":"Service","name":"web","uid":"x","controller":true,"blockOwnerDeletion":true}}]}},"addressType":"IPv4","endpoints":[{}],"ports":[{{"name":"http","port":80,"protocol":"TCP"}}]}}}}"#,
        endpoints.join(",")
    )
}

fn dynamic_object(text: &str) -> EndpointSlice {
    let event: Event<DynamicObject> = serde_json::from_str(text).unwrap();
    let DynamicObject {
        types,
        metadata,
        data,
    } = event.object;
    let Value::Object(mut fields) = data else {
        panic!("an object");
    };
    if let Some(types) = types {
        fields.insert("apiVersion".into(), Value::String(types.api_version));
        fields.insert("kind".into(), Value::String(types.kind));
    }
    fields.insert("metadata".into(), serde_json::to_value(metadata).unwrap());
    serde_path_to_error::deserialize(Value::Object(fields)).unwrap()
}

fn bench(c: &mut Criterion) {
    let text = slice_event(100);
    let mut g = c.benchmark_group("api_decode_slice_100_endpoints");
    g.bench_function("dynamic_object", |b| {
        b.iter(|| dynamic_object(black_box(&text)))
    });
    g.bench_function("tree_then_typed", |b| {
        b.iter(|| {
            let event: Event<Value> = serde_json::from_str(black_box(&text)).unwrap();
            EndpointSlice::deserialize(&event.object).unwrap()
        });
    });
    g.bench_function("tree_then_model", |b| {
        b.iter(|| {
            let event: Event<Value> = serde_json::from_str(black_box(&text)).unwrap();
            Kind::EndpointSlice
                .convert(Document::Tree(event.object))
                .unwrap()
        });
    });
    g.bench_function("text_then_model", |b| {
        b.iter(|| {
            let event: Event<Box<RawValue>> = serde_json::from_str(black_box(&text)).unwrap();
            Kind::EndpointSlice
                .convert(Document::Text(event.object.get()))
                .unwrap()
        });
    });
    g.bench_function("typed_from_text", |b| {
        b.iter(|| {
            let event: Event<EndpointSlice> = serde_json::from_str(black_box(&text)).unwrap();
            event.object
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
