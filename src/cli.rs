//! The command line: `vmnet-operator crd | version`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::crdgen;

/// Gives virtual machines their network identity on a VyOS router.
#[derive(Parser, Debug)]
#[command(name = "vmnet-operator", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CustomResourceDefinitions (or write one file per kind).
    Crd(CrdArgs),
    /// Print the version.
    Version,
}

/// Options of `crd`.
#[derive(clap::Args, Debug)]
pub struct CrdArgs {
    /// Write one file per kind into this directory instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// What to produce: the CRDs as YAML, or the field reference as Markdown.
    #[arg(long, value_enum, default_value_t = CrdFormat::Yaml)]
    pub format: CrdFormat,
}

/// Output of `crd`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrdFormat {
    /// The CRDs, as `kubectl apply -f` takes them.
    Yaml,
    /// A Markdown reference of every field (docs/api-reference.md).
    Markdown,
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Crd(args) => run_crd(&args),
            Command::Version => {
                println!("vmnet-operator {}", env!("CARGO_PKG_VERSION"));
                Ok(())
            }
        }
    }
}

fn run_crd(args: &CrdArgs) -> anyhow::Result<()> {
    match (args.format, &args.out_dir) {
        (CrdFormat::Yaml, None) => {
            std::io::stdout().write_all(crdgen::all_yaml()?.as_bytes())?;
        }
        (CrdFormat::Yaml, Some(dir)) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (file, yaml) in crdgen::files()? {
                let path = dir.join(file);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        (CrdFormat::Markdown, None) => {
            std::io::stdout().write_all(crdgen::reference_markdown()?.as_bytes())?;
        }
        (CrdFormat::Markdown, Some(dir)) => {
            let path = dir.join("api-reference.md");
            std::fs::write(&path, crdgen::reference_markdown()?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
