//! WhatsApp Cloud API webhook bodies (`switchboard_channels::whatsapp`): the routing read of an
//! unverified body and the parser; and, on the same JSON, a message-template list page as the
//! Graph API answers it (template parsing, placeholders, building a send).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::whatsapp::{self, ButtonArg, TemplateArgs, WaEvent};

fuzz_target!(|body: &[u8]| {
    let (phones, wabas) = whatsapp::routing_ids(body);
    if let Ok(hook) = whatsapp::parse(body) {
        for c in &hook.changes {
            // Every change the parser accepts is routed by ids the routing read found.
            // (A change without a number, a template update, by its business account.)
            if let Some(p) = &c.phone_number_id {
                assert!(phones.contains(p), "{p} not in {phones:?}");
            } else if !c.waba_id.is_empty() {
                assert!(wabas.contains(&c.waba_id), "{} not in {wabas:?}", c.waba_id);
            }
            for ev in &c.events {
                let _ = ev.at();
                if let WaEvent::Message(m) = ev {
                    assert!(!m.id.is_empty());
                    let _ = m.from.key();
                }
            }
        }
    }

    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let _ = whatsapp::check_interactive(&v["interactive"]);
    let (templates, _next) = whatsapp::parse_templates_page(&v);
    for mut t in templates {
        // An approved template given one good value per placeholder always builds.
        t.status = "APPROVED".into();
        let p = t.params();
        let fill = |names: &[String]| vec!["x".to_owned(); names.len()];
        let args = TemplateArgs {
            header: fill(&p.header_text),
            header_media_link: p
                .header_media
                .as_ref()
                .map(|_| "https://example.com/a.jpg".into()),
            body: fill(&p.body),
            buttons: p
                .buttons
                .iter()
                .map(|(index, names)| ButtonArg {
                    index: *index,
                    parameters: fill(names),
                })
                .collect(),
        };
        if let Err(e) = whatsapp::build_template(&t, &args) {
            panic!("{e} for {t:?} with {args:?}");
        }
        let _ = t.render(&args);
        let _ = whatsapp::build_template(&t, &TemplateArgs::default());
    }
});
