#!/bin/sh
# After removing the deb or rpm: take away what after-install.sh put on PATH (only if it is ours).
if grep -q 'run by the Gatehouse app' /usr/bin/gatehouse 2>/dev/null; then rm -f /usr/bin/gatehouse; fi
if [ -L '/usr/bin/${executable}' ]; then rm -f '/usr/bin/${executable}'; fi
exit 0
