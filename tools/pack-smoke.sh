#!/usr/bin/env bash
# Pack smoke test: packs Managed.Kernels, Managed.Tensors and Managed.Models into a local
# folder (Models only packs: nothing installs it yet), installs Managed.Tensors (which
# brings Managed.Kernels) from there into a fresh console app whose
# Program.cs is the README's first ```csharp block, builds it for net10.0 and net8.0, runs
# both, and checks that both exit 0 and print the same thing (the net8.0 run uses the
# packages' lib/net8.0 assemblies on whatever runtime is installed, through RollForward).
# Usage: bash tools/pack-smoke.sh   (exit 0: pass). .ci/run counts it as one test.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
start=$SECONDS

echo "pack-smoke: packing into $work/feed"
for p in src/Kernels/Managed.Kernels.csproj src/Tensors/Managed.Tensors.csproj \
         src/Models/Managed.Models.csproj; do
  dotnet pack "$p" -c Release -o "$work/feed" -v quiet -nologo
done
ls "$work/feed"

app="$work/app"
mkdir -p "$app"
# The README's first csharp block, by the rule tests/Docs uses (a fence may be indented).
awk '/^[ \t]*```csharp[ \t]*$/ && !seen { inside = 1; seen = 1; next }
     inside && /^[ \t]*```[ \t]*$/ { exit }
     inside { print }' README.md > "$app/Program.cs"
if [ ! -s "$app/Program.cs" ]; then echo "pack-smoke: README.md has no csharp block"; exit 1; fi

# A console app as `dotnet new console` makes it (written here: no template needed), for both
# target frameworks the packages ship.
cat > "$app/Smoke.csproj" <<'EOF'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFrameworks>net10.0;net8.0</TargetFrameworks>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
    <!-- Run the net8.0 build on a newer runtime when .NET 8 is not installed. -->
    <RollForward>Major</RollForward>
    <UseAppHost>false</UseAppHost>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Managed.Tensors" Version="0.1.0" />
  </ItemGroup>
</Project>
EOF
# The local folder plus the default source; Managed.* only from the local folder. Packages
# go to a folder of this run (a stale Managed.* 0.1.0 from an earlier run is never used),
# and the user's package folder serves the rest without downloading it again.
user_packages=${NUGET_PACKAGES:-$HOME/.nuget/packages}
cat > "$app/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$work/feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="local">
      <package pattern="Managed.Kernels" />
      <package pattern="Managed.Tensors" />
      <package pattern="Managed.Models" />
    </packageSource>
    <packageSource key="nuget.org">
      <package pattern="*" />
    </packageSource>
  </packageSourceMapping>
  <fallbackPackageFolders>
    <add key="user" value="$user_packages" />
  </fallbackPackageFolders>
</configuration>
EOF
export NUGET_PACKAGES="$work/packages"

echo "pack-smoke: building the console app"
(cd "$app" && dotnet build -c Release -v quiet -nologo)
declare -A out
for tfm in net10.0 net8.0; do
  echo "pack-smoke: running $tfm"
  out[$tfm]=$(cd "$app" && dotnet "bin/Release/$tfm/Smoke.dll")
  echo "${out[$tfm]}"
done
grep -q "managed.kernels" <(ls "$NUGET_PACKAGES") || { echo "pack-smoke: not installed"; exit 1; }
if [ "${out[net10.0]}" != "${out[net8.0]}" ]; then
  echo "pack-smoke: net8.0 and net10.0 printed different things"; exit 1
fi
echo "pack-smoke: passed in $((SECONDS - start)) s"
