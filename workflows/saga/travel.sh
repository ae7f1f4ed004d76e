#!/bin/sh
# Command activity for workflows/saga/saga.star: $1 is the action; stdin holds the JSON
# arguments (["Lisbon"]). Exit code 65 marks a failure that retrying cannot fix.
action="$1"
city=$(cat | tr -d '[]"\n')
case "$action" in
  book_car)
    if [ "${SAGA_CARS:-0}" != "1" ]; then
      echo "no cars available in $city" >&2
      exit 65
    fi ;;
esac
echo "\"$action $city: ok\""
