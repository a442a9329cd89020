"""Every `nas` sub-command documents every option it takes."""
import argparse

from nas.cli import build_parser


def _subparsers(parser, prefix=()):
    for action in parser._actions:  # argparse exposes sub-parsers only through this attribute
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subparsers(sub, (*prefix, name))


def test_every_option_of_every_command_has_help():
    missing = []
    commands = list(_subparsers(build_parser()))
    assert len(commands) >= 14  # flops show train eval search scale(grid emit single study) pipeline compare ...
    for path, sub in commands:
        for action in sub._actions:
            if action.help in (None, "") and not isinstance(action, argparse._SubParsersAction):
                missing.append(f"nas {' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
        sub.format_help()
    assert not missing, missing
