//! Hardware descriptions: prism's table, prism.toml overrides, architectures
//! prism does not know.

use prism::frontend::parse;
use prism::ir::hardware::{FIELDS, HardwareSource, built_in};

fn toml(target: &str) -> String {
    format!(
        "[target]\n{target}\n\n[workload.k]\ninputs = {{ x = \"f16[n, d]\" }}\nprogram = \"x * 2\"\ndims = {{ n = [8], d = [64] }}\n"
    )
}

#[test]
fn the_table_describes_four_architectures_with_sane_figures() {
    let table = built_in();
    let names: Vec<&str> = table.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["sm_80", "sm_86", "sm_89", "sm_90a"]);
    for (n, h) in &table {
        assert!(h.sms >= 40 && h.sms <= 200, "{n}");
        assert!(h.smem_per_block == 48 * 1024, "{n}");
        assert!(h.smem_per_block_optin > h.smem_per_block, "{n}");
        assert!(h.smem_per_sm >= h.smem_per_block_optin, "{n}");
        assert!(h.max_threads_per_sm >= h.max_threads_per_block, "{n}");
        assert!(
            h.dram_gbps > 100.0 && h.tensor_tflops > 50.0 && h.launch_us > 0.0,
            "{n}"
        );
    }
    // Every field is one a prism.toml may override.
    let t = toml::Table::try_from(&table[0].1).expect("serializes");
    let mut keys: Vec<&str> = t.keys().map(String::as_str).collect();
    let mut fields = FIELDS.to_vec();
    keys.sort_unstable();
    fields.sort_unstable();
    assert_eq!(keys, fields);
}

#[test]
fn the_default_target_is_described_by_the_table() {
    let spec = parse("p.toml", &toml("dtype = \"f16\"")).expect("parses");
    let t = &spec.target;
    assert_eq!(t.hardware.len(), t.archs.len());
    for (a, h) in t.archs.iter().zip(&t.hardware) {
        assert_eq!(&h.arch, a);
        assert_eq!(h.source, HardwareSource::BuiltIn);
    }
}

#[test]
fn a_prism_toml_overrides_fields_and_describes_new_architectures() {
    // An H200: an sm_90a with more bandwidth.
    let spec = parse(
        "p.toml",
        &toml(
            "arch = [\"sm_90a\"]\nhardware = { sm_90a = { name = \"NVIDIA H200\", dram_gbps = 4800 } }",
        ),
    )
    .expect("parses");
    let h = &spec.target.hardware[0];
    assert_eq!(h.source, HardwareSource::Overridden);
    assert_eq!(h.hardware.name, "NVIDIA H200");
    assert_eq!(h.hardware.dram_gbps, 4800.0);
    assert_eq!(h.hardware.sms, 132, "the rest from the table");
    // An architecture prism does not know takes the nearest older one.
    let spec = parse("p.toml", &toml("arch = [\"sm_100a\"]")).expect("parses");
    let h = &spec.target.hardware[0];
    assert_eq!(h.source, HardwareSource::Nearest("sm_90a".into()));
    assert_eq!(h.hardware.sms, 132);
    // ... unless the prism.toml describes it completely.
    let full = "hardware.sm_120 = { name = \"RTX PRO 6000\", sms = 188, max_threads_per_block = 1024, max_threads_per_sm = 1536, regs_per_sm = 65536, smem_per_block = 49152, smem_per_block_optin = 101376, smem_per_sm = 102400, l2_bytes = 134217728, dram_gbps = 1792.0, tensor_tflops = 500.0, launch_us = 4.0 }";
    let spec = parse("p.toml", &toml(&format!("arch = [\"sm_120\"]\n{full}"))).expect("parses");
    let h = &spec.target.hardware[0];
    assert_eq!(h.source, HardwareSource::Declared);
    assert_eq!(h.hardware.sms, 188);
    assert_eq!(h.hardware.name, "RTX PRO 6000");
}
