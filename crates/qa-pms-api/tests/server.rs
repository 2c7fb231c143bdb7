//! The service over a real socket: the same server the binary runs, on port 0, over loopback.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use common::TestApp;
use qa_pms_storage::Backend;

on_both_backends!(the_server_answers_over_loopback_and_shuts_down_gracefully);

async fn the_server_answers_over_loopback_and_shuts_down_gracefully(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-1", "Over the wire", "Open", None)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(qa_pms_api::serve(listener, app.router.clone(), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let url = format!("http://{address}/api/v1/tickets/PROJ-1");

    let first = client.get(&url).send().await.expect("first request");
    let first_status = first.headers()["x-cache-status"]
        .to_str()
        .unwrap()
        .to_owned();
    let request_id = first.headers().get("x-request-id").cloned();
    let first_body = first.bytes().await.expect("body");
    let second = client.get(&url).send().await.expect("second request");
    let second_status = second.headers()["x-cache-status"]
        .to_str()
        .unwrap()
        .to_owned();
    let second_body = second.bytes().await.expect("body");
    let health: serde_json::Value = client
        .get(format!("http://{address}/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("health JSON");
    stop.send(()).expect("server still running");
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;

    assert_eq!(first_status, "MISS");
    assert_eq!(second_status, "HIT");
    assert_eq!(first_body, second_body);
    assert!(request_id.is_some(), "every response carries a request id");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["backend"], backend.as_str());
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "graceful shutdown: {stopped:?}"
    );
}
