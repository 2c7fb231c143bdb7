//! Two realistic collections for tests and demos: nested folders, string and object URLs (one
//! without `raw`), descriptions as strings and as objects, bodies in raw, urlencoded, formdata
//! and graphql modes, saved responses and scripts the client must step over.

use serde_json::{json, Value};

use super::collection::{folder, request, FakeCollection};

/// The workspace of the GraphQL collection (the shop collection is in the default one).
pub const CATALOG_WORKSPACE: &str = "c6d2f6a1-90b0-4c62-9a8f-0e3f1f3e5b7d";

/// `Shop API` (8 requests, folders three deep, in the default workspace) and `Catalog GraphQL`
/// (2 requests, in [`CATALOG_WORKSPACE`]).
pub fn demo_collections() -> Vec<FakeCollection> {
    vec![shop_api(), catalog_graphql()]
}

fn shop_api() -> FakeCollection {
    let refunds = folder(
        "Refunds",
        vec![
            request(
                "Create refund",
                json!({
                    "method": "POST",
                    "header": [{"key": "Content-Type", "value": "application/json"}],
                    "body": {
                        "mode": "raw",
                        "raw": "{\n  \"amount\": 1999,\n  \"reason\": \"damaged_item\"\n}",
                        "options": {"raw": {"language": "json"}}
                    },
                    "url": {
                        "raw": "{{baseUrl}}/orders/:orderId/refunds",
                        "host": ["{{baseUrl}}"],
                        "path": ["orders", ":orderId", "refunds"],
                        "variable": [{"key": "orderId", "value": "ord_1001"}]
                    },
                    "description": "Refunds part of a paid order to the original payment method."
                }),
            ),
            request(
                "List refunds",
                json!({
                    "method": "GET",
                    "header": [],
                    "url": "{{baseUrl}}/orders/:orderId/refunds"
                }),
            ),
            folder(
                "Edge cases",
                vec![request(
                    "Refund more than paid",
                    json!({
                        "method": "POST",
                        "header": [{"key": "Content-Type", "value": "application/json"}],
                        "body": {"mode": "raw", "raw": "{\"amount\": 999999}"},
                        "url": {
                            "raw": "{{baseUrl}}/orders/:orderId/refunds",
                            "host": ["{{baseUrl}}"],
                            "path": ["orders", ":orderId", "refunds"]
                        },
                        "description": {
                            "content": "Expect **422** `refund_exceeds_payment`.",
                            "type": "text/markdown"
                        }
                    }),
                )],
            ),
        ],
    );
    let orders = folder(
        "Orders",
        vec![
            with_example(request(
                "List orders",
                json!({
                    "method": "GET",
                    "header": [{"key": "Accept", "value": "application/json"}],
                    "url": {
                        "raw": "{{baseUrl}}/orders?status=open&limit=20",
                        "host": ["{{baseUrl}}"],
                        "path": ["orders"],
                        "query": [
                            {"key": "status", "value": "open"},
                            {"key": "limit", "value": "20"}
                        ]
                    },
                    "description": "Open orders of the signed-in customer, newest first."
                }),
            )),
            request(
                "Create order",
                json!({
                    "method": "POST",
                    "header": [{"key": "Content-Type", "value": "application/json"}],
                    "body": {
                        "mode": "raw",
                        "raw": "{\n  \"items\": [{\"sku\": \"TSHIRT-M\", \"qty\": 2}],\n  \"coupon\": \"SPRING10\"\n}"
                    },
                    "url": "{{baseUrl}}/orders",
                    "description": {
                        "content": "Creates an order and reserves stock. Coupons are applied at checkout.",
                        "type": "text/plain"
                    }
                }),
            ),
            refunds,
        ],
    );
    let auth = folder(
        "Auth",
        vec![
            request(
                "Login",
                json!({
                    "method": "POST",
                    "body": {
                        "mode": "urlencoded",
                        "urlencoded": [
                            {"key": "grant_type", "value": "password", "type": "text"},
                            {"key": "username", "value": "ana.souza@example.test", "type": "text"},
                            {"key": "password", "value": "{{password}}", "type": "text"},
                            {"key": "scope", "value": "legacy", "type": "text", "disabled": true}
                        ]
                    },
                    "url": {
                        "raw": "{{baseUrl}}/oauth/token",
                        "host": ["{{baseUrl}}"],
                        "path": ["oauth", "token"]
                    }
                }),
            ),
            request(
                "Upload avatar",
                json!({
                    "method": "PUT",
                    "body": {
                        "mode": "formdata",
                        "formdata": [
                            {"key": "caption", "value": "Profile picture", "type": "text"},
                            {"key": "file", "type": "file", "src": "/home/ana/avatar.png"}
                        ]
                    },
                    "url": "{{baseUrl}}/me/avatar"
                }),
            ),
        ],
    );
    FakeCollection::new("Shop API")
        .with_description("The public REST API of the web shop.")
        .with_items(vec![
            orders,
            auth,
            request("Health check", json!("https://shop.example.test/health")),
        ])
}

fn catalog_graphql() -> FakeCollection {
    FakeCollection::new("Catalog GraphQL")
        .in_workspace(CATALOG_WORKSPACE)
        .with_items(vec![
            request(
                "Search products",
                json!({
                    "method": "POST",
                    "body": {
                        "mode": "graphql",
                        "graphql": {
                            "query": "query Search($term: String!) { products(search: $term) { id name price } }",
                            "variables": "{\"term\": \"sneakers\"}"
                        }
                    },
                    "url": {
                        "raw": "https://catalog.example.test/graphql",
                        "protocol": "https",
                        "host": ["catalog", "example", "test"],
                        "path": ["graphql"]
                    }
                }),
            ),
            request(
                "Get product",
                json!({
                    "method": "GET",
                    "url": {
                        "protocol": "https",
                        "host": ["catalog", "example", "test"],
                        "path": ["products", "42"],
                        "query": [{"key": "expand", "value": "variants"}]
                    }
                }),
            ),
        ])
}

/// Adds a saved example response and a test script, which a catalog ignores.
fn with_example(mut item: Value) -> Value {
    item["event"] = json!([{
        "listen": "test",
        "script": {
            "type": "text/javascript",
            "exec": ["pm.test(\"status is 200\", () => pm.response.to.have.status(200));"]
        }
    }]);
    item["response"] = json!([{
        "name": "Two open orders",
        "status": "OK",
        "code": 200,
        "header": [{"key": "Content-Type", "value": "application/json"}],
        "body": "{\"orders\": [{\"id\": \"ord_1001\"}, {\"id\": \"ord_1002\"}]}"
    }]);
    item
}
