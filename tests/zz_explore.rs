mod common;
#[test]
#[ignore]
fn explore() {
    let cp = common::cluster::ControlPlane::start();
    std::fs::write(
        "/tmp/wt10x/kubeconfig-path",
        cp.kubeconfig().display().to_string(),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3000));
}
