"""Shell completion scripts generated from the argparse tree (``shiftctl completion bash``).

argparse has no completion of its own. Rather than take a dependency (argcomplete re-runs the
program on every <Tab>; shtab would be one more package to keep), the parser is walked once
and a small bash function is written: the command path typed so far selects the words to
offer (sub-commands, flags, choices). zsh loads the same function through ``bashcompinit``.
Both ``shiftctl`` and ``kubectl-shift`` get it.
"""

from __future__ import annotations

import argparse
import shlex

__all__ = ["command_words", "completion_script", "value_flags"]


def command_words(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """``{"get rollout": ["--watch", ...], ...}``: the words to offer after each path."""
    table: dict[str, list[str]] = {}

    def walk(current: argparse.ArgumentParser, path: str) -> None:
        words: list[str] = []
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    words.append(name)
                    walk(sub, f"{path} {name}".strip())
            elif action.option_strings:
                words.extend(o for o in action.option_strings if o.startswith("--"))
            elif action.choices:
                words.extend(str(choice) for choice in action.choices)
        table[path] = sorted(dict.fromkeys(words))

    walk(parser, "")
    return table


def value_flags(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag that takes a value (its value is not part of the command path)."""
    found: set[str] = set()

    def walk(current: argparse.ArgumentParser) -> None:
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)
            elif action.option_strings and action.nargs != 0:
                found.update(action.option_strings)

    walk(parser)
    return sorted(found)


def completion_script(parser: argparse.ArgumentParser, *, shell: str, program: str) -> str:
    function = f"_{program.replace('-', '_')}_complete"
    takes_value = "|".join(value_flags(parser))
    cases = []
    for path, words in sorted(command_words(parser).items(), key=lambda item: -len(item[0])):
        pattern = '""' if not path else f'{shlex.quote(path)}|{shlex.quote(path)}" "*'
        cases.append(f"    {pattern}) words={shlex.quote(' '.join(words))} ;;")
    body = "\n".join(cases)
    header = f"# {program} completion for {shell}; load: source <({program} completion {shell})"
    script = f"""{header}
{function}() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" path="" word words="" skip=""
  for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
    if [ -n "$skip" ]; then skip=""; continue; fi
    case "$word" in
      {takes_value}) skip=1 ;;
      -*) ;;
      *) path="${{path:+$path }}$word" ;;
    esac
  done
  case "$path" in
{body}
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}}
complete -F {function} {program} kubectl-shift
"""
    if shell == "zsh":
        script = "autoload -U +X bashcompinit && bashcompinit\n" + script
    return script
