//! Maintainer tasks.
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let schemas = portico_codegen::spec::load_all(root, &root.join("../shared/mcp-spec")).unwrap();
    for s in &schemas {
        let m = portico_codegen::lower::lower(s, "x").unwrap();
        if std::env::args().nth(1).as_deref() == Some(s.revision.as_str()) {
            for d in &m.defs {
                if let portico_codegen::ir::DefKind::Union(u) = &d.kind {
                    println!(
                        "{} {:?} => {}",
                        d.name,
                        u.variants.iter().map(|v| &v.name).collect::<Vec<_>>(),
                        serde_json::to_string(&u.dispatch).unwrap()
                    );
                }
            }
            for me in &m.methods {
                println!(
                    "{} {} {:?} {:?}",
                    me.name, me.message, me.direction, me.result
                );
            }
        }
        println!(
            "{} defs={} methods={}",
            s.revision,
            m.defs.len(),
            m.methods.len()
        );
    }
}
