#!/bin/sh
# Command activity for workflows/poller/poller.star: reports "waiting" until round 2.
round=$(cat | tr -d '[] \n')
if [ "$round" -ge 2 ]; then echo '"ready"'; else echo '"waiting"'; fi
