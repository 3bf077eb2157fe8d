; Puts the folder holding gatehouse.cmd on the current user's PATH at install, and takes it off at
; uninstall (electron-builder includes this file in its NSIS script; see electron-builder.yml).
; PowerShell edits the variable: NSIS strings are limited to 1024 characters, which a long PATH
; exceeds, and a truncated PATH would break the user's other programs.
!macro customInstall
  nsExec::ExecToLog 'powershell -NoProfile -ExecutionPolicy Bypass -Command "$$d = \"$INSTDIR\resources\resources\windows\bin\"; $$p = [Environment]::GetEnvironmentVariable(\"Path\", \"User\"); if (-not (($$p -split \";\") -contains $$d)) { [Environment]::SetEnvironmentVariable(\"Path\", ($$p.TrimEnd(\";\") + \";\" + $$d).TrimStart(\";\"), \"User\") }"'
!macroend

!macro customUnInstall
  nsExec::ExecToLog 'powershell -NoProfile -ExecutionPolicy Bypass -Command "$$d = \"$INSTDIR\resources\resources\windows\bin\"; $$p = [Environment]::GetEnvironmentVariable(\"Path\", \"User\"); [Environment]::SetEnvironmentVariable(\"Path\", (($$p -split \";\") | Where-Object { $$_ -ne $$d -and $$_ -ne \"\" }) -join \";\", \"User\")"'
!macroend
