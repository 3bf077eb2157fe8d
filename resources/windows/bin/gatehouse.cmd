@echo off
rem The gatehouse command, run by the Gatehouse app's own runtime (main/cli-mode.ts).
rem The installer adds this folder to the user's PATH; the app is four levels up.
"%~dp0..\..\..\..\Gatehouse.exe" --cli %*
