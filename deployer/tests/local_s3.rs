//! The embedded S3 with the real aws-sdk-s3 client: signatures checked, and each
//! key limited to what its policy grants.

use std::collections::BTreeMap;

use stackctl::local::iam::{Iam, Principal};
use stackctl::local::s3::serve;

fn client(addr: std::net::SocketAddr, key: &str, secret: &str) -> aws_sdk_s3::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("eu-central-1"))
        .endpoint_url(format!("http://{addr}"))
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(key, secret, None, None, "local"))
        .http_client(http)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_reachable_only_as_granted() {
    let dir = tempfile::tempdir().unwrap();
    // The policy the engine generates for search-worker's role.
    let worker_policy = serde_json::json!({ "Version": "2012-10-17", "Statement": [
        { "Sid": "Bucket0Objects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": ["arn:aws:s3:::results-bucket/results/*"] },
    ]});
    let principal = |key: &str, secret: &str, policy: serde_json::Value| {
        (key.to_string(), Principal { access_key: key.into(), secret_key: secret.into(), arn: format!("arn:aws:sts::000000000000:assumed-role/r/{key}"), policy })
    };
    let principals: BTreeMap<String, Principal> =
        [principal("WORKER", "worker-secret", worker_policy), principal("START", "start-secret", serde_json::json!({ "Statement": [] }))].into();
    let iam = Iam { admin_key: "ADMIN".into(), admin_secret: "admin-secret".into(), principals };
    let addr = serve(dir.path(), std::sync::Arc::new(iam)).await.unwrap();

    let admin = client(addr, "ADMIN", "admin-secret");
    admin.create_bucket().bucket("results-bucket").send().await.unwrap();

    let worker = client(addr, "WORKER", "worker-secret");
    worker.put_object().bucket("results-bucket").key("results/t1.json").body(b"{\"ok\":1}".to_vec().into()).send().await.unwrap();
    let got = worker.get_object().bucket("results-bucket").key("results/t1.json").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"{\"ok\":1}");
    assert!(dir.path().join("results-bucket/results/t1.json").is_file(), "the bucket lives in a directory");

    use aws_sdk_s3::error::ProvideErrorMetadata;
    let outside = worker.put_object().bucket("results-bucket").key("other/x").body(b"x".to_vec().into()).send().await.unwrap_err();
    assert_eq!(outside.code(), Some("AccessDenied"));
    let listing = worker.list_objects_v2().bucket("results-bucket").send().await.unwrap_err();
    assert_eq!(listing.code(), Some("AccessDenied"));
    let start = client(addr, "START", "start-secret");
    let denied = start.get_object().bucket("results-bucket").key("results/t1.json").send().await.unwrap_err();
    assert_eq!(denied.code(), Some("AccessDenied"));
    assert!(denied.message().unwrap_or_default().contains("not authorized to perform: s3:GetObject"), "{denied:?}");
    let forged = client(addr, "WORKER", "wrong-secret");
    assert!(forged.get_object().bucket("results-bucket").key("results/t1.json").send().await.is_err(), "a wrong secret fails the signature check");
}

/// Keys a file path cannot carry as-is get S3's 4xx answers, never a 500, and
/// never a file outside the key's own place (the SDK sends these keys verbatim).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_stored_literally_or_refused_with_s3_answers() {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    let dir = tempfile::tempdir().unwrap();
    // With s3:ListBucket, so that a missing key is told apart (404 NoSuchKey).
    let policy = serde_json::json!({ "Statement": [
        { "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": ["arn:aws:s3:::bkt/*"] },
        { "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::bkt"] },
    ] });
    let principals: BTreeMap<String, Principal> =
        [("W".to_string(), Principal { access_key: "W".into(), secret_key: "s".into(), arn: "arn:aws:sts::000000000000:assumed-role/r/w".into(), policy })].into();
    let iam = Iam { admin_key: "ADMIN".into(), admin_secret: "a".into(), principals };
    let addr = serve(dir.path(), std::sync::Arc::new(iam)).await.unwrap();
    client(addr, "ADMIN", "a").create_bucket().bucket("bkt").send().await.unwrap();
    let w = client(addr, "W", "s");
    let put = |key: &str| w.put_object().bucket("bkt").key(key).body(b"x".to_vec().into()).send();

    put("a").await.unwrap();
    put("results/r.json").await.unwrap();
    let before: Vec<_> = walk(dir.path());
    for (key, code) in [
        ("a/b", "InvalidArgument"),               // a prefix of it is an object
        ("results", "InvalidArgument"),           // objects live under results/
        ("results/../a2", "InvalidArgument"),     // a `..` segment
        ("results/./x", "InvalidArgument"),       // a `.` segment
        ("results//x", "InvalidArgument"),        // an empty segment
        ("results/\0x", "InvalidArgument"),       // a NUL
    ] {
        let e = put(key).await.unwrap_err();
        assert_eq!(e.code(), Some(code), "{key:?}: {e:?}");
    }
    let long = format!("results/{}", "s".repeat(256));
    assert_eq!(put(&long).await.unwrap_err().code(), Some("KeyTooLongError"));
    let too_long_for_bookkeeping = format!("results/{}/{}", "s".repeat(200), "t".repeat(200));
    assert_eq!(put(&too_long_for_bookkeeping).await.unwrap_err().code(), Some("KeyTooLongError"));
    assert_eq!(walk(dir.path()), before, "nothing was written by the refused keys");

    for key in ["results/", "a/b", "results/missing", "results"] {
        let e = w.get_object().bucket("bkt").key(key).send().await.unwrap_err();
        assert_eq!(e.code(), Some("NoSuchKey"), "GET {key:?}: {e:?}");
    }
    let e = w.get_object().bucket("bkt").key("results/../a").send().await.unwrap_err();
    assert_eq!(e.code(), Some("InvalidArgument"), "the policy is never asked about a key other than the file read");
    // Keys of ordinary length with any other character are stored as they are.
    let odd = "results/été #1 (copy) + ~x.json";
    put(odd).await.unwrap();
    assert!(dir.path().join("bkt").join(odd).is_file());
    let got = w.get_object().bucket("bkt").key(odd).send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"x");
}

fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap().flatten() {
        out.push(e.path());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out.sort();
    out
}

/// The policies the engine generates from access levels, enforced by the local
/// S3 as AWS enforces them: each level grants exactly its actions, `list` only
/// under the prefix (`s3:prefix`), and a missing key is 404 only to a caller
/// that may list the bucket, 403 to any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_levels_grant_exactly_their_actions_and_missing_keys_answer_as_aws() {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    let project = tempfile::tempdir().unwrap();
    for f in ["a", "b", "c"] {
        std::fs::create_dir_all(project.path().join(format!("functions/{f}"))).unwrap();
        std::fs::write(project.path().join(format!("functions/{f}/Cargo.toml")), format!("[package]\nname = \"{f}\"\n")).unwrap();
    }
    std::fs::create_dir_all(project.path().join("stacks")).unwrap();
    let file = project.path().join("stacks/perm.yaml");
    std::fs::write(&file, "stack: perm
buckets:
  data: {}
functions:
  a:
    crate: functions/a
    permissions:
      buckets: [{ bucket: data, access: [read, write, list], prefix: notes/ }]
  b:
    crate: functions/b
    permissions:
      buckets: [{ bucket: data, access: [read, delete], prefix: notes/ }]
  c:
    crate: functions/c
    permissions:
      buckets: [{ bucket: data, access: [read, list] }]
").unwrap();
    let stack = stackctl::stack::load(&file, "dev").unwrap();
    let ctx = stackctl::engine::desired::Context { stage: "dev".into(), account: "000000000000".into(), region: "eu-central-1".into(), parameters: Default::default() };
    let bucket = stackctl::naming::bucket_name("perm", "dev", "data", "000000000000", "eu-central-1");
    let principals: BTreeMap<String, Principal> = ["a", "b", "c"]
        .iter()
        .map(|f| {
            let policy = stackctl::engine::desired::role_policy(&stack, f, &ctx);
            (f.to_uppercase(), Principal { access_key: f.to_uppercase(), secret_key: "s".into(), arn: format!("arn:aws:sts::000000000000:assumed-role/perm-dev-{f}/{f}"), policy })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let iam = Iam { admin_key: "ADMIN".into(), admin_secret: "a".into(), principals };
    let addr = serve(dir.path(), std::sync::Arc::new(iam)).await.unwrap();
    client(addr, "ADMIN", "a").create_bucket().bucket(&bucket).send().await.unwrap();
    let (a, b, c) = (client(addr, "A", "s"), client(addr, "B", "s"), client(addr, "C", "s"));
    let code = |e: &dyn ProvideErrorMetadata| e.code().map(str::to_owned);

    // a: read, write, list under notes/.
    a.put_object().bucket(&bucket).key("notes/n1").body(b"one".to_vec().into()).send().await.unwrap();
    a.get_object().bucket(&bucket).key("notes/n1").send().await.unwrap();
    let listed = a.list_objects_v2().bucket(&bucket).prefix("notes/").send().await.unwrap();
    assert_eq!(listed.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["notes/n1"]);
    a.list_objects_v2().bucket(&bucket).prefix("notes/n").send().await.unwrap();
    let e = a.list_objects_v2().bucket(&bucket).prefix("other/").send().await.unwrap_err();
    assert_eq!(code(&e), Some("AccessDenied".into()), "a list outside the prefix");
    let e = a.list_objects_v2().bucket(&bucket).send().await.unwrap_err();
    assert_eq!(code(&e), Some("AccessDenied".into()), "a list of the whole bucket");
    let e = a.delete_object().bucket(&bucket).key("notes/n1").send().await.unwrap_err();
    assert_eq!(code(&e), Some("AccessDenied".into()), "no delete level");
    let e = a.put_object().bucket(&bucket).key("other/x").body(b"x".to_vec().into()).send().await.unwrap_err();
    assert_eq!(code(&e), Some("AccessDenied".into()));
    // Listing is conditioned on the prefix, so a GetObject (no prefix in its
    // request) is not covered by it: a missing key is 403, as on AWS.
    let e = a.get_object().bucket(&bucket).key("notes/missing").send().await.unwrap_err();
    assert_eq!(code(&e), Some("AccessDenied".into()), "{e:?}");

    // b: read and delete; no list, so a missing key is 403 too.
    let e = b.get_object().bucket(&bucket).key("notes/missing").send().await.unwrap_err();
    assert_eq!(code(&e), Some("AccessDenied".into()));
    let e = b.put_object().bucket(&bucket).key("notes/n2").body(b"x".to_vec().into()).send().await.unwrap_err();
    assert_eq!(code(&e), Some("AccessDenied".into()), "no write level");
    let e = b.list_objects_v2().bucket(&bucket).prefix("notes/").send().await.unwrap_err();
    assert_eq!(code(&e), Some("AccessDenied".into()), "no list level");
    b.delete_object().bucket(&bucket).key("notes/n1").send().await.unwrap();
    assert!(!dir.path().join(&bucket).join("notes/n1").exists(), "deleted");

    // c: read and list of the whole bucket: a missing key is 404 NoSuchKey.
    let e = c.get_object().bucket(&bucket).key("notes/missing").send().await.unwrap_err();
    assert!(e.as_service_error().is_some_and(|s| s.is_no_such_key()), "{e:?}");
    let e = c.head_object().bucket(&bucket).key("notes/missing").send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(404));
    let e = b.head_object().bucket(&bucket).key("notes/missing").send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(403));
    c.list_objects_v2().bucket(&bucket).send().await.unwrap();
}
