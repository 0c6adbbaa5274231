"""The `resnet-sweep` commands: argparse and printing only; each calls the layers below."""
