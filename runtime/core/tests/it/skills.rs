//! The skills extension (SEP-2640) of the server framework, driven with raw JSON-RPC as a
//! 2026-07-28 client: the capability, `skills/list`, `skills/get`, the `SKILL.md` resources and
//! `resources/directory/read`.

use std::time::Duration;

use portico_core::server::Server;
use portico_core::server::skills::Skill;
use portico_core::{Outbound, Peer, PeerConfig};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

fn server() -> Server {
    Server::builder("skills-test", "1.0.0")
        .page_size(1)
        .skill(
            Skill::new("pdf-processing", "Extract, fill, and assemble PDF documents", "# PDF\n")
                .with_frontmatter("metadata", json!({"version": "2"}))
                .with_file("references/FORMS.md", "text/markdown", "# Forms\n")
                .with_file("scripts/fill.py", "text/x-python", "print('fill')\n"),
        )
        .skill(Skill::new("notes", "Take notes", "Write them down.\n").under("acme"))
        .build()
}

struct Client {
    peer: Peer<portico_core::server::Connection>,
    out: mpsc::Receiver<Outbound>,
    next: i64,
}

impl Client {
    fn new(server: &Server) -> Self {
        let (tx, out) = mpsc::channel(16);
        Self {
            peer: Peer::new(server.connection(), PeerConfig::default(), tx),
            out,
            next: 0,
        }
    }

    async fn send(&mut self, method: &str, mut params: Value) -> Value {
        self.next += 1;
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        });
        let frame = json!({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params});
        self.peer.receive(&frame.to_string()).await;
        let answer = tokio::time::timeout(Duration::from_secs(10), self.out.recv())
            .await
            .expect("an answer")
            .expect("open");
        serde_json::from_str(&answer.text).expect("JSON")
    }

    async fn result(&mut self, method: &str, params: Value) -> Value {
        let v = self.send(method, params).await;
        assert!(v.get("result").is_some(), "{method}: {v}");
        v["result"].clone()
    }
}

fn sha256(text: &str) -> String {
    let hex: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

#[tokio::test]
async fn skills_are_declared_listed_and_fetched() {
    let s = server();
    let caps = serde_json::to_value(s.capabilities()).expect("JSON");
    assert_eq!(
        caps["extensions"]["io.modelcontextprotocol/skills"],
        json!({"directoryRead": true})
    );
    assert!(caps["resources"].is_object(), "skills need the resources capability");

    let mut c = Client::new(&s);
    // One skill per page (page size 1): each entry whole, the cursor honoured.
    let page1 = c.result("skills/list", json!({})).await;
    assert_eq!(page1["resultType"], "complete");
    assert!(page1["ttlMs"].is_number() && page1["cacheScope"] == "public", "{page1}");
    let entry = &page1["skills"][0];
    assert_eq!(entry["uri"], "skill://pdf-processing/SKILL.md");
    assert_eq!(
        entry["frontmatter"],
        json!({"name": "pdf-processing", "description": "Extract, fill, and assemble PDF documents", "metadata": {"version": "2"}})
    );
    let files: Vec<&str> = entry["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["uri"].as_str())
        .collect();
    assert_eq!(
        files,
        [
            "skill://pdf-processing/SKILL.md",
            "skill://pdf-processing/references/FORMS.md",
            "skill://pdf-processing/scripts/fill.py"
        ]
    );
    assert_eq!(entry["resources"][1]["digest"], sha256("# Forms\n"));
    assert_eq!(entry["resources"][1]["size"], 8);
    let cursor = page1["nextCursor"].as_str().expect("a second page").to_string();
    let page2 = c.result("skills/list", json!({"cursor": cursor})).await;
    assert_eq!(page2["skills"][0]["uri"], "skill://acme/notes/SKILL.md");
    assert!(page2.get("nextCursor").is_none());

    let got = c
        .result("skills/get", json!({"uri": "skill://acme/notes/SKILL.md"}))
        .await;
    assert_eq!(got["skill"], page2["skills"][0]);
    assert!(got.get("nextCursor").is_none());
    assert!(got["ttlMs"].is_number() && got["cacheScope"].is_string());
    let unknown = c.send("skills/get", json!({"uri": "skill://nope/SKILL.md"})).await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
}

#[tokio::test]
async fn skill_files_are_resources_and_skill_md_matches_its_entry() {
    let s = server();
    let mut c = Client::new(&s);
    let uri = "skill://pdf-processing/SKILL.md";
    let read = c.result("resources/read", json!({"uri": uri})).await;
    let contents = &read["contents"][0];
    assert_eq!(contents["mimeType"], "text/markdown");
    let text = contents["text"].as_str().expect("text");
    assert_eq!(
        text,
        "---\nname: \"pdf-processing\"\ndescription: \"Extract, fill, and assemble PDF documents\"\n\
         metadata: {\"version\":\"2\"}\n---\n\n# PDF\n"
    );
    let entry = c.result("skills/get", json!({"uri": uri})).await;
    assert_eq!(entry["skill"]["resources"][0]["digest"], sha256(text));
    assert_eq!(entry["skill"]["resources"][0]["size"], text.len());

    // Listed with the frontmatter's name and description (page size 1: walk the pages).
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = cursor.map_or_else(|| json!({}), |c| json!({"cursor": c}));
        let page = c.result("resources/list", params).await;
        listed.extend(page["resources"].as_array().expect("resources").iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let manifest = listed.iter().find(|r| r["uri"] == uri).expect("SKILL.md is listed");
    assert_eq!(manifest["name"], "pdf-processing");
    assert_eq!(manifest["description"], "Extract, fill, and assemble PDF documents");
    assert_eq!(manifest["mimeType"], "text/markdown");
    let script = listed
        .iter()
        .find(|r| r["uri"] == "skill://pdf-processing/scripts/fill.py")
        .expect("files are listed");
    assert_eq!(script["mimeType"], "text/x-python");
}

#[tokio::test]
async fn directories_are_read_child_by_child() {
    let s = server();
    let mut c = Client::new(&s);
    let mut children = Vec::new();
    let mut params = json!({"uri": "skill://pdf-processing"});
    loop {
        let page = c.result("resources/directory/read", params.clone()).await;
        assert_eq!(page["resultType"], "complete");
        children.extend(page["resources"].as_array().expect("resources").iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => params["cursor"] = next.into(),
            None => break,
        }
    }
    let listed: Vec<(&str, &str)> = children
        .iter()
        .map(|r| (r["uri"].as_str().unwrap_or(""), r["mimeType"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        listed,
        [
            ("skill://pdf-processing/SKILL.md", "text/markdown"),
            ("skill://pdf-processing/references", "inode/directory"),
            ("skill://pdf-processing/scripts", "inode/directory"),
        ]
    );
    let sub = c
        .result(
            "resources/directory/read",
            json!({"uri": "skill://pdf-processing/references/"}),
        )
        .await;
    assert_eq!(sub["resources"][0]["uri"], "skill://pdf-processing/references/FORMS.md");
    let prefix = c
        .result("resources/directory/read", json!({"uri": "skill://acme"}))
        .await;
    assert_eq!(prefix["resources"][0]["uri"], "skill://acme/notes");
    for not_a_directory in ["skill://pdf-processing/SKILL.md", "skill://missing", "file:///tmp"] {
        let v = c
            .send("resources/directory/read", json!({"uri": not_a_directory}))
            .await;
        assert_eq!(v["error"]["code"], -32602, "{not_a_directory}: {v}");
    }
}

#[tokio::test]
async fn servers_without_skills_do_not_serve_the_methods() {
    let s = Server::builder("bare", "1").build();
    assert!(s.capabilities().extensions.is_none());
    let mut c = Client::new(&s);
    for method in ["skills/list", "skills/get", "resources/directory/read"] {
        let v = c.send(method, json!({"uri": "skill://x/SKILL.md"})).await;
        assert_eq!(v["error"]["code"], -32601, "{method}: {v}");
    }
}

#[test]
#[should_panic(expected = "skill name")]
fn invalid_skill_names_are_refused() {
    let _ = Skill::new("Not_Valid", "d", "b");
}
