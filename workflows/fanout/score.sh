#!/bin/sh
# Command activity for workflows/fanout/fanout.star: the score of an item is its length.
item=$(cat | tr -d '[]"\n')
printf '%s' "$item" | wc -c | tr -d ' '
