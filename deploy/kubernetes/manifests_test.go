// Package kubernetes holds tlstap's Kubernetes manifests; its test
// validates them offline against the Kubernetes API types.
package kubernetes

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// object is one decoded document.
type object struct {
	file string
	kind string
	name string
	v    any
}

// newObject returns the API type for apiVersion and kind.
func newObject(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	}
	return nil, fmt.Errorf("%s %s: not a kind these manifests use", apiVersion, kind)
}

// decode splits a manifest into documents and decodes each strictly:
// unknown fields, wrong types and duplicate keys are errors.
func decode(file string, data []byte) ([]object, error) {
	var out []object
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return nil, fmt.Errorf("%s document %d: %w", file, i+1, err)
		}
		v, err := newObject(head.APIVersion, head.Kind)
		if err != nil {
			return nil, fmt.Errorf("%s document %d: %w", file, i+1, err)
		}
		if err := strict([]byte(doc), v); err != nil {
			return nil, fmt.Errorf("%s %s %q: %w", file, head.Kind, head.Metadata.Name, err)
		}
		if head.Metadata.Name == "" {
			return nil, fmt.Errorf("%s document %d: no metadata.name", file, i+1)
		}
		clusterScoped := head.Kind == "Namespace" || strings.HasPrefix(head.Kind, "ClusterRole")
		if clusterScoped && head.Metadata.Namespace != "" {
			return nil, fmt.Errorf("%s %s %q: cluster-scoped, but has namespace %q", file, head.Kind, head.Metadata.Name, head.Metadata.Namespace)
		}
		if !clusterScoped && head.Metadata.Namespace != "tlstap" {
			return nil, fmt.Errorf("%s %s %q: namespace %q, want tlstap", file, head.Kind, head.Metadata.Name, head.Metadata.Namespace)
		}
		out = append(out, object{file: file, kind: head.Kind, name: head.Metadata.Name, v: v})
	}
	return out, nil
}

// strict decodes YAML as the API server decodes JSON: field names are
// case-sensitive (encoding/json's are not: it would take hostPid for
// hostPID), and unknown or duplicate fields are errors.
func strict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(j, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// manifests decodes every manifest the kustomization lists, and checks
// that it lists every one in the directory.
func manifests(t *testing.T) []object {
	t.Helper()
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
		Images     []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := strict(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	files, _ := filepath.Glob("*.yaml")
	files = slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	slices.Sort(files)
	listed := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(files, listed) {
		t.Fatalf("kustomization.yaml lists %v, the directory has %v", listed, files)
	}
	var all []object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decode(f, b)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, objs...)
	}
	return all
}

// podOf returns the pod template and selector of a workload. A
// StatefulSet's claim templates become volumes of its pods, so they are
// added to the copy returned.
func podOf(o object) (*corev1.PodTemplateSpec, map[string]string, bool) {
	switch w := o.v.(type) {
	case *appsv1.DaemonSet:
		return &w.Spec.Template, w.Spec.Selector.MatchLabels, true
	case *appsv1.Deployment:
		return &w.Spec.Template, w.Spec.Selector.MatchLabels, true
	case *appsv1.StatefulSet:
		pod := w.Spec.Template.DeepCopy()
		for _, c := range w.Spec.VolumeClaimTemplates {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: c.Name})
		}
		return pod, w.Spec.Selector.MatchLabels, true
	}
	return nil, nil, false
}

// checkPod reports what the API server would refuse or what would not
// run: a selector that misses the template, mounts without volumes,
// $(VAR) without env, SYS_ADMIN with allowPrivilegeEscalation false.
func checkPod(name string, pod *corev1.PodTemplateSpec, selector map[string]string) []string {
	var errs []string
	if len(selector) == 0 {
		errs = append(errs, name+": empty selector")
	}
	for k, v := range selector {
		if pod.Labels[k] != v {
			errs = append(errs, fmt.Sprintf("%s: selector %s=%s does not match the pod template's labels", name, k, v))
		}
	}
	vols := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = true
	}
	if len(pod.Spec.Containers) == 0 {
		errs = append(errs, name+": no containers")
	}
	for _, c := range pod.Spec.Containers {
		cn := name + "/" + c.Name
		if c.Image == "" {
			errs = append(errs, cn+": no image")
		}
		for _, m := range c.VolumeMounts {
			if !vols[m.Name] {
				errs = append(errs, fmt.Sprintf("%s: mount %s has no volume", cn, m.Name))
			}
		}
		env := map[string]bool{}
		for _, e := range c.Env {
			env[e.Name] = true
		}
		for _, a := range append(slices.Clone(c.Command), c.Args...) {
			for _, m := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(a, -1) {
				if !env[m[1]] {
					errs = append(errs, fmt.Sprintf("%s: argument %q refers to $(%s), which is not in env", cn, a, m[1]))
				}
			}
		}
		if sc := c.SecurityContext; sc != nil && sc.Capabilities != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			if slices.Contains(sc.Capabilities.Add, "SYS_ADMIN") {
				errs = append(errs, cn+": SYS_ADMIN with allowPrivilegeEscalation false is refused by the API server")
			}
		}
	}
	return errs
}

// TestManifests decodes every manifest strictly and checks workloads,
// services and the capture DaemonSet's host access.
func TestManifests(t *testing.T) {
	objs := manifests(t)
	kinds := map[string]int{}
	pods := map[string]*corev1.PodTemplateSpec{}
	for _, o := range objs {
		kinds[o.kind]++
		if pod, sel, ok := podOf(o); ok {
			pods[o.kind+"/"+o.name] = pod
			for _, e := range checkPod(o.kind+"/"+o.name, pod, sel) {
				t.Error(e)
			}
		}
	}
	for _, k := range []string{"Namespace", "ConfigMap", "DaemonSet", "Deployment", "Service", "StatefulSet", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} {
		if kinds[k] == 0 {
			t.Errorf("no %s", k)
		}
	}

	// Every Service selects a pod template and targets a port it exposes.
	for _, o := range objs {
		svc, ok := o.v.(*corev1.Service)
		if !ok {
			continue
		}
		var match *corev1.PodTemplateSpec
		for _, pod := range pods {
			all := len(svc.Spec.Selector) > 0
			for k, v := range svc.Spec.Selector {
				all = all && pod.Labels[k] == v
			}
			if all {
				match = pod
			}
		}
		if match == nil {
			t.Errorf("Service %s selects no pod template", o.name)
			continue
		}
		for _, p := range svc.Spec.Ports {
			found := false
			for _, c := range match.Spec.Containers {
				for _, cp := range c.Ports {
					found = found || (p.TargetPort.StrVal != "" && cp.Name == p.TargetPort.StrVal) ||
						(p.TargetPort.StrVal == "" && cp.ContainerPort == p.TargetPort.IntVal)
				}
			}
			if !found {
				t.Errorf("Service %s port %s targets %s, which no container exposes", o.name, p.Name, p.TargetPort.String())
			}
		}
	}

	// The capture DaemonSet: host PIDs, the measured capabilities and
	// nothing else, not privileged, the mounts the capture reads.
	ds := pods["DaemonSet/tlstap-capture"]
	if ds == nil {
		t.Fatal("no DaemonSet tlstap-capture")
	}
	if !ds.Spec.HostPID {
		t.Error("capture: hostPID is not set")
	}
	c := ds.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("capture: no capabilities")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("capture: privileged")
	}
	var add []string
	for _, cp := range sc.Capabilities.Add {
		add = append(add, string(cp))
	}
	slices.Sort(add)
	if want := []string{"SYS_ADMIN", "SYS_PTRACE", "SYS_RESOURCE"}; !slices.Equal(add, want) {
		t.Errorf("capture: capabilities %v, want %v", add, want)
	}
	if len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("capture: drops %v, want ALL", sc.Capabilities.Drop)
	}
	hostPaths := map[string]string{}
	for _, v := range ds.Spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounted := map[string]string{}
	for _, m := range c.VolumeMounts {
		if hp, ok := hostPaths[m.Name]; ok {
			mounted[m.MountPath] = hp
			if !m.ReadOnly {
				t.Errorf("capture: host path %s mounted writable", hp)
			}
		}
	}
	for _, p := range []string{"/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/cgroup"} {
		if mounted[p] != p {
			t.Errorf("capture: host %s not mounted at %s (mounts: %v)", p, p, mounted)
		}
	}
	checkPodNames(t, objs, ds)
}

// checkPodNames: the capture DaemonSet runs with --pods=in-cluster, as a
// service account whose token is mounted, with NODE_NAME from the
// downward API; that account is bound to a role that may get, list and
// watch pods and nothing else.
func checkPodNames(t *testing.T, objs []object, ds *corev1.PodTemplateSpec) {
	t.Helper()
	c := ds.Spec.Containers[0]
	if !slices.Contains(c.Args, "--pods=in-cluster") {
		t.Errorf("capture: args %v lack --pods=in-cluster", c.Args)
	}
	nodeName := false
	for _, e := range c.Env {
		if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeName = true
		}
	}
	if !nodeName {
		t.Error("capture: no NODE_NAME from spec.nodeName (the node whose pods --pods lists)")
	}
	sa := ds.Spec.ServiceAccountName
	if sa == "" || sa == "default" {
		t.Fatalf("capture: service account %q, want its own", sa)
	}
	if m := ds.Spec.AutomountServiceAccountToken; m == nil || !*m {
		t.Error("capture: the service account token is not mounted (--pods=in-cluster reads it)")
	}
	var account bool
	roles := map[string]*rbacv1.ClusterRole{}
	var bindings []*rbacv1.ClusterRoleBinding
	for _, o := range objs {
		switch v := o.v.(type) {
		case *corev1.ServiceAccount:
			account = account || v.Name == sa
		case *rbacv1.ClusterRole:
			roles[v.Name] = v
		case *rbacv1.ClusterRoleBinding:
			bindings = append(bindings, v)
		}
	}
	if !account {
		t.Errorf("no ServiceAccount %s", sa)
	}
	bound := false
	for _, b := range bindings {
		r := roles[b.RoleRef.Name]
		if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.APIGroup != rbacv1.GroupName || r == nil {
			t.Errorf("ClusterRoleBinding %s refers to %s %q, not a ClusterRole here", b.Name, b.RoleRef.Kind, b.RoleRef.Name)
			continue
		}
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == "tlstap" {
				bound = true
			}
		}
		for _, rule := range r.Rules {
			verbs := slices.Sorted(slices.Values(rule.Verbs))
			if !slices.Equal(rule.APIGroups, []string{""}) || !slices.Equal(rule.Resources, []string{"pods"}) ||
				!slices.Equal(verbs, []string{"get", "list", "watch"}) || len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
				t.Errorf("ClusterRole %s grants %+v; want get, list and watch on pods only", r.Name, rule)
			}
		}
	}
	if !bound {
		t.Errorf("no ClusterRoleBinding gives service account %s a role", sa)
	}
}

// TestStrict: the decoder refuses what the API server would (a misspelt
// field, a wrong type, an unknown kind), so TestManifests can fail.
func TestStrict(t *testing.T) {
	ok := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: tlstap\ndata:\n  a: b\n"
	for _, tc := range []struct {
		name, doc string
		bad       bool
	}{
		{"valid", ok, false},
		{"misspelt field", strings.Replace(ok, "data:", "dat:", 1), true},
		{"wrong type", strings.Replace(ok, "  a: b", "  a: [1]", 1), true},
		{"unknown kind", strings.Replace(ok, "ConfigMap", "ConfigMapp", 1), true},
		{"wrong namespace", strings.Replace(ok, "namespace: tlstap", "namespace: default", 1), true},
		{"misspelt pod field", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x, namespace: tlstap}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      hostPid: true\n      containers: [{name: c, image: i}]\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode("test.yaml", []byte(tc.doc))
			if (err != nil) != tc.bad {
				t.Fatalf("err = %v, want error: %v", err, tc.bad)
			}
		})
	}
	// checkPod's refusals.
	pod := &corev1.PodTemplateSpec{}
	pod.Labels = map[string]string{"a": "b"}
	f := false
	pod.Spec.Containers = []corev1.Container{{Name: "c", Image: "i", Args: []string{"--x=$(MISSING)"},
		VolumeMounts:    []corev1.VolumeMount{{Name: "gone", MountPath: "/x"}},
		SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &f, Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}}}}
	if errs := checkPod("p", pod, map[string]string{"a": "c"}); len(errs) != 4 {
		t.Fatalf("checkPod found %d problems, want 4: %q", len(errs), errs)
	}
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// tlstap builds tlstap from this repository, once.
func tlstap(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tlstap-manifests")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "tlstap")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/tlstap")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// TestArgs gives every tlstap container's arguments to the real tlstap:
// an unknown or malformed flag fails (with --help, nothing runs).
func TestArgs(t *testing.T) {
	n := 0
	for _, o := range manifests(t) {
		pod, _, ok := podOf(o)
		if !ok {
			continue
		}
		for _, c := range pod.Spec.Containers {
			if c.Name != "tlstap" {
				continue
			}
			n++
			t.Run(o.name, func(t *testing.T) {
				cmd := exec.Command(tlstap(t), append(slices.Clone(c.Args), "--help")...)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Fatalf("tlstap %s: %v\n%s", strings.Join(c.Args, " "), err, out.String())
				}
				if !strings.Contains(out.String(), "Usage:\n  tlstap "+c.Args[0]) {
					t.Fatalf("tlstap %s --help printed no usage of %s:\n%s", strings.Join(c.Args, " "), c.Args[0], out.String())
				}
			})
		}
	}
	if n != 2 {
		t.Fatalf("%d tlstap containers, want 2 (capture and viewer)", n)
	}
	// The check can fail: a misspelt flag is refused.
	if err := exec.Command(tlstap(t), "tls", "--nod=x", "--help").Run(); err == nil {
		t.Fatal("tlstap accepted a misspelt flag")
	}
}
