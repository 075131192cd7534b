//! Every official 2026-07-28 example deserializes as the type its folder names, serializes
//! back, and compares equal as a `serde_json::Value` — parsed both from the file's text (the
//! streaming path) and from a parsed `Value`.

use portico_protocol::v2026_07_28;

#[test]
fn official_examples_round_trip() {
    let root = crate::spec_dir().join("2026-07-28/examples");
    let mut types: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}; set MCP_SPEC_DIR to the MCP spec folder", root.display()))
        .map(|e| e.expect("readable dir entry").path())
        .collect();
    types.sort();
    let (mut passed, mut total) = (0, 0);
    let mut failures = Vec::new();
    for dir in types {
        let type_name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 folder name")
            .to_string();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("example folder")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for file in files.into_iter().filter(|f| f.extension().is_some_and(|x| x == "json")) {
            total += 1;
            let text = std::fs::read_to_string(&file).expect("example readable");
            let original: serde_json::Value = serde_json::from_str(&text).expect("example is JSON");
            let name = format!(
                "{type_name}/{}",
                file.file_name().and_then(|n| n.to_str()).unwrap_or_default()
            );
            let from_text = v2026_07_28::roundtrip_json(&type_name, &text);
            let from_value = v2026_07_28::roundtrip_value(&type_name, &original);
            match (from_text, from_value) {
                (Some(Ok(a)), Some(Ok(b))) if a == original && b == original => passed += 1,
                (Some(Ok(a)), _) if a != original => {
                    failures.push(format!("{name}: round trip differs:\n  in:  {original}\n  out: {a}"))
                }
                (Some(Err(e)), _) | (_, Some(Err(e))) => failures.push(format!("{name}: {e}")),
                (None, _) | (_, None) => failures.push(format!("{name}: no generated type `{type_name}`")),
                _ => failures.push(format!("{name}: the Value path differs from the text path")),
            }
        }
    }
    println!("official 2026-07-28 examples: {passed} of {total} round-trip");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(total, 129, "the spec folder should hold 129 official examples");
}
