//! A school: teachers and students log in through the school's OpenID
//! provider; two replicas share sessions in Redis; course materials are for
//! the `teachers` group only; the CloudFront key is rotated on both replicas
//! while cookies signed with the old one keep working; and a teacher's
//! sessions are revoked by subject from the admin API, on both replicas.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::harness::oidc::{OidcProvider, oidc_login};
use crate::harness::origin_with;
use crate::harness::{KEY_ID, Redis, fixtures, free_port};

const ADMIN_TOKEN: &str = "school-admin-token-0123456789";
const NEW_KEY: &str = "KSCHOOLNEWKEY1";

/// The replicas' configuration, signing with `active`.
fn replica_config(
    dir: &std::path::Path,
    base_url: &str,
    active: &str,
    new_key: &std::path::Path,
    redis: u16,
) -> std::path::PathBuf {
    let path = serve_config(
        dir,
        base_url,
        &format!(
            r#"
[[keys.key]]
id = "{NEW_KEY}"
file = "{new_key}"

[session]
store = "redis"
redis_url = "redis://127.0.0.1:{redis}"
redis_prefix = "school:"

[[grants]]
paths = ["/students/{{sub}}/*"]

[[grants]]
when = {{ claim = "groups", contains = "teachers" }}
paths = ["/materials/*"]
"#,
            new_key = new_key.display(),
        ),
    );
    let text = std::fs::read_to_string(&path).unwrap().replace(
        &format!("active = \"{KEY_ID}\""),
        &format!("active = \"{active}\""),
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_school_behind_its_provider_on_two_replicas_rotates_keys_and_revokes() {
    crate::harness::process_setup();
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let new_key = cfmint::signer::Backend::default()
        .generate(cfmint::signer::KeySpec::EcdsaP256)
        .unwrap();
    let new_key_file = dir.path().join("new.pem");
    std::fs::write(&new_key_file, new_key.private_pem.as_bytes()).unwrap();
    let origin = origin_with(&[("materials/algebra/week-1.pdf", b"%PDF-1.4 algebra")]);
    let edge = EdgeProcess::start(
        &format!("origin_dir = \"{}\"", origin.path().display()),
        &[(KEY_ID, &fixtures().signing_key), (NEW_KEY, &new_key_file)],
    );

    // Replica one's callback is what the provider knows.
    let port = free_port();
    let origin_url = format!("http://127.0.0.1:{port}");
    let callback = format!("{origin_url}/callback");
    let return_url = format!("{origin_url}/");
    let provider = OidcProvider::start(&callback, 0).await;
    let oidc_env = [
        ("CFMINT__AUTH__OIDC__ISSUER", provider.issuer.as_str()),
        ("CFMINT__AUTH__OIDC__CLIENT_ID", "cfmint"),
        (
            "CFMINT__AUTH__OIDC__CLIENT_SECRET",
            "cfmint-secret-0123456789abcdef0123456789",
        ),
        ("CFMINT__AUTH__OIDC__REDIRECT_URL", callback.as_str()),
        ("CFMINT__AUTH__OIDC__SCOPES", "openid,groups"),
        ("CFMINT__AUTH__OIDC__RETURN_URLS", return_url.as_str()),
        ("CFMINT__SERVER__ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let config = replica_config(
        dir.path(),
        &edge.public_url,
        KEY_ID,
        &new_key_file,
        redis.port,
    );
    let listen_one = format!("127.0.0.1:{port}");
    let mut env_one = oidc_env.to_vec();
    env_one.push(("CFMINT__SERVER__LISTEN", listen_one.as_str()));
    let mut one = ServeProcess::with_config(&config, &env_one);
    let mut two = ServeProcess::with_config(&config, &oidc_env);

    let teacher = browser();
    oidc_login(&one.url("/login/oidc"), &teacher, "teacher-tess").await;
    let student = browser();
    oidc_login(&one.url("/login/oidc"), &student, "sam").await;

    // Sessions are shared: the teacher mints on replica two.
    let minted = two.mint(&teacher, json!({ "path": "/materials/" })).await;
    let (status, old_cookies, key) = (minted.status, minted.cookies.clone(), minted.key_pair_id());
    assert_eq!(status, StatusCode::OK);
    assert_eq!(key, KEY_ID);
    let pdf = edge
        .get("/materials/algebra/week-1.pdf", &old_cookies)
        .await;
    assert_eq!(pdf.status(), StatusCode::OK);
    // Materials are for teachers.
    let status = two
        .mint(&student, json!({ "path": "/materials/" }))
        .await
        .status;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let status = one
        .mint(&student, json!({ "path": "/students/sam/" }))
        .await
        .status;
    assert_eq!(status, StatusCode::OK);

    // Rotation: the new key is already in the key group (the edge has both);
    // both replicas switch on SIGHUP. Cookies signed before still work.
    let rotated = replica_config(
        dir.path(),
        &edge.public_url,
        NEW_KEY,
        &new_key_file,
        redis.port,
    );
    assert_eq!(rotated, config);
    for replica in [&mut one, &mut two] {
        replica.signal("HUP");
        let reloaded = replica.wait_for_log(
            "key ring reloaded; signing with the active key",
            Duration::from_secs(10),
        );
        assert_eq!(reloaded["key_pair_id"], NEW_KEY);
    }
    for replica in [&one, &two] {
        let minted = replica
            .mint(&teacher, json!({ "path": "/materials/" }))
            .await;
        let (status, cookies, key) = (minted.status, minted.cookies.clone(), minted.key_pair_id());
        assert_eq!(status, StatusCode::OK);
        assert_eq!(key, NEW_KEY);
        let pdf = edge.get("/materials/algebra/week-1.pdf", &cookies).await;
        assert_eq!(pdf.status(), StatusCode::OK);
    }
    let pdf = edge
        .get("/materials/algebra/week-1.pdf", &old_cookies)
        .await;
    assert_eq!(
        pdf.status(),
        StatusCode::OK,
        "cookies from before the rotation"
    );

    // The teacher leaves: every session of hers ends, on both replicas.
    let revoke = reqwest::Client::new()
        .post(format!("http://{}/admin/sessions/revoke", one.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "sub": "teacher-tess" }))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);
    let answer: serde_json::Value = revoke.json().await.unwrap();
    assert_eq!(answer["revoked"], 1);
    for replica in [&one, &two] {
        let status = replica
            .mint(&teacher, json!({ "path": "/materials/" }))
            .await
            .status;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let status = replica
            .mint(&student, json!({ "path": "/students/sam/" }))
            .await
            .status;
        assert_eq!(status, StatusCode::OK);
    }
}
