// Command protogen writes the TypeScript protobuf code of OpAMP (src/opamp/gen/) with
// protoc-gen-es, from the opamp-spec .proto descriptors compiled into opamp-go (the version pinned
// in ../go.mod): GitHub, where the .proto files live, is not reachable from where this runs, the Go
// module proxy is, and opamp-go carries the spec's full descriptors. Run by scripts/opamp-codegen.sh.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/open-telemetry/opamp-go/protobufs"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: protogen <protoc-gen-es executable> <output directory>")
		os.Exit(2)
	}
	plugin, out := os.Args[1], os.Args[2]
	files := []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(protobufs.File_anyvalue_proto),
		protodesc.ToFileDescriptorProto(protobufs.File_opamp_proto),
	}
	request := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: []string{"anyvalue.proto", "opamp.proto"},
		Parameter:      proto.String("target=ts,import_extension=none"),
		ProtoFile:      files,
	}
	input, err := proto.Marshal(request)
	check(err)
	var stdout bytes.Buffer
	cmd := exec.Command(plugin)
	cmd.Stdin = bytes.NewReader(input)
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	check(cmd.Run())
	var response pluginpb.CodeGeneratorResponse
	check(proto.Unmarshal(stdout.Bytes(), &response))
	if response.Error != nil {
		check(fmt.Errorf("protoc-gen-es: %s", response.GetError()))
	}
	check(os.MkdirAll(out, 0o755))
	for _, file := range response.File {
		check(os.WriteFile(filepath.Join(out, file.GetName()), []byte(file.GetContent()), 0o644))
		fmt.Println(filepath.Join(out, file.GetName()))
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
