#!/usr/bin/env bash
echo "soak: not written yet" >&2; exit 1
