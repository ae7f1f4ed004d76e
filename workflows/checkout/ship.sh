#!/bin/sh
# ship ORDER: stdin is the JSON array ["order-42"]; stdout the tracking number.
read -r args
order=$(printf '%s' "$args" | sed 's/^\[[[:space:]]*"\([^"]*\)".*/\1/')
echo "{\"tracking\": \"TRK-$order\"}"
