//! Fuzzes what `pullgate doctor` reads off a node: a KubeletConfiguration file
//! (`read_kubelet_config`, YAML or JSON), a kubelet command line
//! (`KubeletFlags::parse`, NUL-separated as /proc/<pid>/cmdline) and an endpoint
//! (`Endpoint::parse`). None may panic; an endpoint read from a file is one line
//! and never empty (an empty value means "the kubelet's default").
#![no_main]

use libfuzzer_sys::fuzz_target;
use pullgate::doctor::{read_kubelet_config, Endpoint, KubeletFlags};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(endpoints) = read_kubelet_config(&text) {
        for value in [&endpoints.runtime, &endpoints.image].into_iter().flatten() {
            assert!(!value.is_empty());
            if !text.trim_start().starts_with('{') {
                assert!(!value.contains('\n'), "a YAML value read across lines: {value:?}");
            }
            let _ = Endpoint::parse(value).is_socket(std::path::Path::new("/run/pullgate/pullgate.sock"));
        }
    }
    let argv: Vec<String> = text.split('\0').map(str::to_owned).collect();
    let flags = KubeletFlags::parse(&argv);
    for value in [&flags.runtime_endpoint, &flags.image_endpoint].into_iter().flatten() {
        let _ = Endpoint::parse(value);
    }
});
