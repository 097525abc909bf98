//! `portcullis policy check|eval|test DIR`.

use anyhow::{bail, Context};

pub(crate) fn run(action: &crate::cli::args::PolicyAction) -> anyhow::Result<()> {
    use crate::cli::args::PolicyAction;
    use crate::policy::Policy;
    match action {
        PolicyAction::Check { dir } => {
            let p = Policy::load(dir)?;
            println!(
                "{}: {} file(s) load and compile; {} test rule(s)",
                dir.display(),
                p.files.len(),
                p.tests.len()
            );
            Ok(())
        }
        PolicyAction::Eval { dir, input } => {
            let p = Policy::load(dir)?;
            let text = std::fs::read_to_string(input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            let value: serde_json::Value = serde_yaml_ng::from_str(&text)
                .with_context(|| format!("{} is not JSON or YAML", input.display()))?;
            let decision = p.evaluate(&value)?;
            println!("{}", serde_json::to_string_pretty(&decision)?);
            Ok(())
        }
        PolicyAction::Test { dir } => {
            let p = Policy::load(dir)?;
            let outcomes = p.run_tests();
            let failed = outcomes.iter().filter(|t| t.outcome.is_err()).count();
            for t in &outcomes {
                match &t.outcome {
                    Ok(()) => println!("PASS {}", t.name),
                    Err(why) => println!("FAIL {} ({}): {why}", t.name, t.file.display()),
                }
            }
            println!("{} passed, {failed} failed", outcomes.len() - failed);
            if failed > 0 {
                bail!("{failed} policy test(s) failed");
            }
            Ok(())
        }
    }
}
