#!/bin/sh
# charge ORDER AMOUNT: stdin is the JSON array ["order-42", 1999]; stdout the result.
# STENT_EXECUTION_ID, STENT_SEQ and STENT_ATTEMPT form the idempotency key a real payment
# API would be given, so a retried attempt never charges twice.
read -r args
amount=$(printf '%s' "$args" | sed 's/.*,[[:space:]]*\([0-9][0-9]*\)[[:space:]]*\]$/\1/')
if [ "$amount" -le 0 ]; then
  echo "CardDeclined: nothing to charge ($amount)" >&2
  exit 65
fi
echo "{\"charged\": $amount, \"key\": \"$STENT_EXECUTION_ID/$STENT_SEQ\"}"
