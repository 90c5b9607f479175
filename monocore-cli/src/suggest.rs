//! "Did you mean" for mistyped subcommands and flags.
//!
//! clap suggests only what is close by its own similarity measure, which
//! misses swapped letters (`monocore rnu`) and short words. Where clap has
//! no suggestion, the closest name by edit distance (swaps count as one
//! edit; the rule the config keys use, `monocore_rules::keys::closest`) is
//! added to its error.

use clap::{
    Command,
    error::{ContextKind, ContextValue, Error, ErrorKind},
};
use monocore_rules::keys::closest;

/// `error` with a suggestion added where clap has none; `argv` is the
/// command line (to find the subcommand whose flags a mistyped flag is
/// compared with).
pub(crate) fn improve(mut error: Error, command: &Command, argv: &[String]) -> Error {
    match error.kind() {
        ErrorKind::InvalidSubcommand if error.get(ContextKind::SuggestedSubcommand).is_none() => {
            let Some(ContextValue::String(word)) = error.get(ContextKind::InvalidSubcommand) else {
                return error;
            };
            let names = command
                .get_subcommands()
                .flat_map(|s| std::iter::once(s.get_name()).chain(s.get_all_aliases()));
            if let Some(best) = closest(word, names) {
                let best = best.to_owned();
                error.insert(
                    ContextKind::SuggestedSubcommand,
                    ContextValue::Strings(vec![best]),
                );
            }
        }
        ErrorKind::UnknownArgument if error.get(ContextKind::SuggestedArg).is_none() => {
            let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
                return error;
            };
            let Some(word) = arg.strip_prefix("--") else {
                return error;
            };
            let word = word.split('=').next().unwrap_or(word).to_owned();
            // The flags of the subcommand on the command line, and the
            // global ones.
            let sub = argv
                .iter()
                .skip(1)
                .find_map(|a| command.find_subcommand(a))
                .unwrap_or(command);
            let longs: Vec<&str> = sub
                .get_arguments()
                .chain(command.get_arguments())
                .filter_map(|a| {
                    let long = a.get_long()?;
                    Some(std::iter::once(long).chain(a.get_all_aliases().unwrap_or_default()))
                })
                .flatten()
                .collect();
            if let Some(best) = closest(&word, longs.iter().copied()) {
                error.insert(
                    ContextKind::SuggestedArg,
                    ContextValue::String(format!("--{best}")),
                );
            }
        }
        _ => {}
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Command {
        Command::new("m")
            .subcommand(Command::new("run").arg(clap::Arg::new("ram").long("ram")))
            .subcommand(Command::new("doctor"))
    }

    fn rendered(args: &[&str]) -> String {
        let argv: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let error = cli().try_get_matches_from(&argv).unwrap_err();
        improve(error, &cli(), &argv).to_string()
    }

    #[test]
    fn swapped_letters_in_a_subcommand_get_a_suggestion() {
        let text = rendered(&["m", "rnu"]);
        assert!(
            text.contains("a similar subcommand exists: 'run'"),
            "{text}"
        );
        let text = rendered(&["m", "doctr"]);
        assert!(text.contains("'doctor'"), "{text}");
    }

    #[test]
    fn a_mistyped_flag_gets_the_closest_flag_of_its_subcommand() {
        let text = rendered(&["m", "run", "--rma", "5"]);
        assert!(text.contains("'--ram'"), "{text}");
    }
}
