//! A collection as the fake Postman keeps it, builders for its Collection v2.1 items, and its two
//! JSON views: the summary of `GET /collections` and the whole of `GET /collections/{uid}`.

use serde_json::{json, Map, Value};

/// The owner (user id) of the fake's collections unless told otherwise.
pub const DEFAULT_OWNER: &str = "12345678";
/// The workspace of the fake's collections unless told otherwise.
pub const DEFAULT_WORKSPACE: &str = "1f0df51a-8658-4ee8-a2a1-d2567dfa09a9";
const SCHEMA: &str = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json";

/// One collection: its metadata and its item tree in Postman Collection v2.1 format.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeCollection {
    /// A UUID; the uid is `{owner}-{id}`.
    pub id: String,
    pub owner: String,
    pub name: String,
    pub description: Option<String>,
    pub workspace: String,
    /// Folders (`{"name", "item": [...]}`) and requests (`{"name", "request": {...}}`) at any
    /// depth. Items without an `id` get a stable one when the collection is stored.
    pub items: Vec<Value>,
    /// Like `2024-05-13T15:10:33.000Z`.
    pub updated_at: String,
}

impl FakeCollection {
    /// An empty collection in the default workspace, with an id derived from its name.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            id: fake_uuid(&format!("collection:{name}")),
            owner: DEFAULT_OWNER.to_owned(),
            name,
            description: None,
            workspace: DEFAULT_WORKSPACE.to_owned(),
            items: Vec::new(),
            updated_at: "2024-05-13T15:10:33.000Z".to_owned(),
        }
    }

    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn in_workspace(mut self, workspace: impl Into<String>) -> Self {
        self.workspace = workspace.into();
        self
    }

    pub fn with_items(mut self, items: Vec<Value>) -> Self {
        self.items = items;
        self
    }

    /// `{owner}-{id}`, what `GET /collections/{uid}` takes.
    pub fn uid(&self) -> String {
        format!("{}-{}", self.owner, self.id)
    }

    /// Gives every item without an `id` a stable one (derived from the collection and the item's
    /// position), and every item a `uid`.
    pub(crate) fn fill_item_ids(&mut self) {
        let (owner, id) = (self.owner.clone(), self.id.clone());
        fill_ids(&mut self.items, &owner, &id);
    }

    /// The entry of `GET /collections`.
    pub(crate) fn summary_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "createdAt": "2024-01-08T09:15:21.000Z",
            "updatedAt": self.updated_at,
            "uid": self.uid(),
            "fork": null,
            "isPublic": false
        })
    }

    /// The body of `GET /collections/{uid}`.
    pub(crate) fn full_json(&self) -> Value {
        let mut info = Map::new();
        info.insert("_postman_id".into(), json!(self.id));
        info.insert("name".into(), json!(self.name));
        if let Some(description) = &self.description {
            info.insert("description".into(), json!(description));
        }
        info.insert("schema".into(), json!(SCHEMA));
        info.insert("updatedAt".into(), json!(self.updated_at));
        info.insert("createdAt".into(), json!("2024-01-08T09:15:21.000Z"));
        info.insert("lastUpdatedBy".into(), json!(self.owner));
        info.insert("uid".into(), json!(self.uid()));
        json!({
            "collection": {
                "info": info,
                "item": self.items,
                "event": [
                    {"listen": "prerequest", "script": {"type": "text/javascript", "exec": [""]}}
                ],
                "variable": [{"key": "baseUrl", "value": "https://shop.example.test/api"}]
            }
        })
    }
}

/// A folder: `{"name", "item": [...]}`.
pub fn folder(name: &str, items: Vec<Value>) -> Value {
    json!({"name": name, "item": items})
}

/// A request item: `{"name", "request": request, "response": []}`; `request` is a request
/// object, or a URL string (which Collection v2.1 allows).
pub fn request(name: &str, request: Value) -> Value {
    json!({"name": name, "request": request, "response": []})
}

fn fill_ids(items: &mut [Value], owner: &str, path: &str) {
    for (index, item) in items.iter_mut().enumerate() {
        let Some(object) = item.as_object_mut() else {
            continue;
        };
        let here = format!("{path}/{index}");
        let id = match object.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                let id = fake_uuid(&here);
                object.insert("id".into(), json!(id));
                id
            }
        };
        object
            .entry("uid")
            .or_insert_with(|| json!(format!("{owner}-{id}")));
        if let Some(Value::Array(children)) = object.get_mut("item") {
            fill_ids(children, owner, &here);
        }
    }
}

/// A version-4-shaped UUID derived from `seed` (two FNV-1a hashes), so that ids are stable.
pub(crate) fn fake_uuid(seed: &str) -> String {
    let hash = |offset: u64| {
        seed.bytes().fold(offset, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let (a, b) = (hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_uuids_and_filled_at_every_depth() {
        let id = fake_uuid("x");
        assert_eq!(id, fake_uuid("x"));
        assert_ne!(id, fake_uuid("y"));
        assert_eq!(id.len(), 36);

        let mut collection = FakeCollection::new("C").with_items(vec![folder(
            "F",
            vec![request("R", json!("https://example.test"))],
        )]);
        collection.fill_item_ids();
        let nested = &collection.items[0]["item"][0];
        assert!(nested["id"].is_string());
        assert_eq!(
            nested["uid"],
            json!(format!(
                "{DEFAULT_OWNER}-{}",
                nested["id"].as_str().unwrap_or("")
            ))
        );
    }
}
