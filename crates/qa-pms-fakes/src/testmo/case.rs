//! A repository case as the fake Testmo keeps it, its JSON, and generated and demo cases.

use serde_json::{json, Map, Value};

/// One case of a project's repository. Custom fields are kept by column name, as Testmo returns
/// them: `custom_description` (HTML), `custom_steps` (`[{"text1": step, "text3": expected}]`),
/// `custom_priority` (a dropdown option id)...
#[derive(Debug, Clone, PartialEq)]
pub struct FakeCase {
    pub id: u64,
    pub folder_id: Option<u64>,
    pub name: String,
    pub fields: Map<String, Value>,
    /// Like `2024-03-05T14:07:12.000000Z`.
    pub updated_at: String,
}

impl FakeCase {
    pub fn new(id: u64, name: impl Into<String>) -> Self {
        Self {
            id,
            folder_id: None,
            name: name.into(),
            fields: Map::new(),
            updated_at: "2024-03-05T14:07:12.000000Z".to_owned(),
        }
    }

    pub fn in_folder(mut self, folder_id: u64) -> Self {
        self.folder_id = Some(folder_id);
        self
    }

    /// Sets a custom field, e.g. `("custom_description", json!("<p>...</p>"))`.
    pub fn with_field(mut self, column: &str, value: Value) -> Self {
        self.fields.insert(column.to_owned(), value);
        self
    }

    /// A plausible case number `id`: a name, a folder, an HTML description and two steps.
    pub fn generated(id: u64) -> Self {
        const AREAS: [&str; 5] = ["Login", "Cart", "Checkout", "Search", "Profile"];
        let area = AREAS[(id % 5) as usize];
        FakeCase::new(id, format!("{area}: scenario {id}"))
            .in_folder(100 + id % 5)
            .with_field(
                "custom_description",
                json!(format!("<p>Checks {} behaviour number {id}.</p>", area.to_lowercase())),
            )
            .with_field(
                "custom_steps",
                json!([
                    {"text1": format!("<p>Open the {} page</p>", area.to_lowercase()), "text2": null, "text3": "<p>The page loads</p>", "text4": null},
                    {"text1": format!("<p>Run scenario {id}</p>"), "text2": null, "text3": "<p>It passes</p>", "text4": null}
                ]),
            )
            .with_field("custom_priority", json!(2))
    }

    /// The case as `GET /api/v1/projects/{id}/cases` lists it.
    pub(crate) fn to_json(&self, project_id: u64) -> Value {
        let mut case = json!({
            "id": self.id,
            "project_id": project_id,
            "repo_id": project_id,
            "folder_id": self.folder_id,
            "name": self.name,
            "template_id": 1,
            "state_id": 4,
            "status_id": 1,
            "estimate": null,
            "forecast": null,
            "has_automation": false,
            "has_automation_status": false,
            "is_active": true,
            "created_at": "2023-11-20T09:31:02.000000Z",
            "created_by": 1,
            "updated_at": self.updated_at,
            "updated_by": 1
        });
        if let Value::Object(object) = &mut case {
            object.extend(self.fields.clone());
        }
        case
    }
}

/// Three hand-written cases of a web shop: HTML texts with entities and line breaks,
/// preconditions, steps with and without expected results, a dropdown and a multi-select.
pub fn demo_cases() -> Vec<FakeCase> {
    vec![
        FakeCase::new(1, "Login with a valid password")
            .in_folder(10)
            .with_field(
                "custom_description",
                json!("<p>A registered customer signs in with e-mail &amp; password.</p>"),
            )
            .with_field(
                "custom_preconditions",
                json!("<ul><li>Account <strong>ana.souza@example.test</strong> exists</li><li>Not locked</li></ul>"),
            )
            .with_field(
                "custom_steps",
                json!([
                    {"text1": "<p>Open /login</p>", "text2": null, "text3": "<p>The form shows</p>", "text4": null},
                    {"text1": "<p>Submit valid credentials</p>", "text2": null, "text3": "<p>The dashboard greets &quot;Ana&quot;</p>", "text4": null}
                ]),
            )
            .with_field("custom_priority", json!(1))
            .with_field("custom_platforms", json!([3, 4])),
        FakeCase::new(2, "Login with an expired password")
            .in_folder(10)
            .with_field(
                "custom_description",
                json!("<p>The password is older than 90 days.<br>The customer must choose a new one.</p>"),
            )
            .with_field(
                "custom_steps",
                json!([{"text1": "<p>Sign in</p>", "text2": null, "text3": null, "text4": null}]),
            )
            .with_field("custom_priority", json!(2)),
        FakeCase::new(3, "Checkout with a saved card")
            .with_field("custom_description", json!(null))
            .with_field("custom_notes", json!("Uses the Stripe test card 4242 4242 4242 4242."))
            .with_field("custom_priority", json!(1)),
    ]
}
