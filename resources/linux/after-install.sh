#!/bin/sh
# After installing the deb or rpm (electron-builder fills in ${sanitizedProductName} and ${executable}).
# 1. The desktop app on PATH as ${executable}, as electron-builder's own script does.
# 2. The `gatehouse` command: a wrapper that runs the app's own runtime as the command line
#    (main/cli-mode.ts): people without Node get the same CLI, and IDE entries name /usr/bin/gatehouse.
set -e
APP_DIR='/opt/${sanitizedProductName}'
ln -sf "$APP_DIR/${executable}" '/usr/bin/${executable}'
cat > /usr/bin/gatehouse <<WRAPPER
#!/bin/sh
# The gatehouse command, run by the Gatehouse app's own runtime (installed with the package).
exec '$APP_DIR/${executable}' --ozone-platform=headless --disable-gpu --cli "\$@"
WRAPPER
chmod 755 /usr/bin/gatehouse
# Chromium's setuid sandbox helper, where the kernel does not offer user namespaces.
chmod 4755 "$APP_DIR/chrome-sandbox" 2>/dev/null || true
if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database /usr/share/applications || true; fi
exit 0
