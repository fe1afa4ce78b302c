package spec

// How the decoder treats a field Kubernetes has but Shoal's structs lack, as
// data. A field nobody lists here is a warning ("not honoured by Shoal") unless its
// value is empty; a field Kubernetes lacks is always an error (decoder.k8sField).

// k8sFieldKey names a field of a Kubernetes type, e.g. {"core/v1.PodSpec", "hostAliases"}.
type k8sFieldKey struct{ typ, field string }

// fieldPolicy says how one unhonoured Kubernetes field is reported.
type fieldPolicy struct {
	// refused, when set, makes the field an error saying why: it restricts what a
	// container may do and Shoal cannot enforce it, so running without it would fail open.
	refused string
	// unsupported, when set, makes the field an error with this message (%s is the
	// field's name): the workload cannot run as written without it.
	unsupported string
	// serverSet fields are written by the API server, not by users; `kubectl get -o
	// yaml` output carries them. They ask for nothing, so they load without a warning.
	serverSet bool
	// shoalDoes is the one value that asks for what Shoal does anyway (usually the
	// Kubernetes default, as `kubectl get -o yaml` prints it): no warning for it.
	shoalDoes string
	// feature groups fields that are one Kubernetes feature, so that they read as
	// one warning; why says what Shoal does instead.
	feature, why string
}

const (
	noSELinux   = "Shoal does not apply SELinux labels"
	noAppArmor  = "Shoal does not apply AppArmor profiles"
	linuxOnly   = "Shoal runs Linux containers only"
	noSATokens  = "Shoal gives instances no service account and no Kubernetes API token"
	serviceAcct = "serviceAccount"
)

var fieldPolicies = map[k8sFieldKey]fieldPolicy{
	{"core/v1.PodSpec", "runtimeClassName"}:              {refused: "Shoal runs every container with runc; it cannot give the sandbox a runtime class asks for"},
	{"core/v1.PodSecurityContext", "seLinuxOptions"}:     {refused: noSELinux},
	{"core/v1.PodSecurityContext", "appArmorProfile"}:    {refused: noAppArmor},
	{"core/v1.PodSecurityContext", "windowsOptions"}:     {refused: linuxOnly},
	{"core/v1.PodSecurityContext", "sysctls"}:            {refused: "Shoal does not set sysctls"},
	{"core/v1.SecurityContext", "seLinuxOptions"}:        {refused: noSELinux},
	{"core/v1.SecurityContext", "appArmorProfile"}:       {refused: noAppArmor},
	{"core/v1.SecurityContext", "windowsOptions"}:        {refused: linuxOnly},
	{"meta/v1.ObjectMeta", "uid"}:                        {serverSet: true},
	{"meta/v1.ObjectMeta", "resourceVersion"}:            {serverSet: true},
	{"meta/v1.ObjectMeta", "generation"}:                 {serverSet: true},
	{"meta/v1.ObjectMeta", "creationTimestamp"}:          {serverSet: true},
	{"meta/v1.ObjectMeta", "deletionTimestamp"}:          {serverSet: true},
	{"meta/v1.ObjectMeta", "deletionGracePeriodSeconds"}: {serverSet: true},
	{"meta/v1.ObjectMeta", "managedFields"}:              {serverSet: true},
	{"meta/v1.ObjectMeta", "selfLink"}:                   {serverSet: true},
	{"apps/v1.Deployment", "status"}:                     {serverSet: true},
	{"core/v1.Service", "status"}:                        {serverSet: true},
	{"core/v1.Namespace", "status"}:                      {serverSet: true},
	{"core/v1.PodSpec", "restartPolicy"}:                 {shoalDoes: "Always"},
	{"core/v1.PodSpec", "dnsPolicy"}:                     {shoalDoes: "ClusterFirst"},
	{"core/v1.PodSpec", "enableServiceLinks"}:            {shoalDoes: "false"},
	{"core/v1.PodSpec", "schedulerName"}:                 {shoalDoes: "default-scheduler"},
	{"core/v1.ServiceSpec", "sessionAffinity"}:           {shoalDoes: "None"},
	{"core/v1.ServiceSpec", "internalTrafficPolicy"}:     {shoalDoes: "Cluster"},
	{"core/v1.ObjectFieldSelector", "apiVersion"}:        {shoalDoes: "v1"},
	{"core/v1.PodSpec", "serviceAccount"}:                {feature: serviceAcct, why: noSATokens},
	{"core/v1.PodSpec", "automountServiceAccountToken"}:  {feature: serviceAcct, why: noSATokens},
}

// typePolicies applies to every field of a Kubernetes type that Shoal's structs lack,
// where fieldPolicies names none.
var typePolicies = map[string]fieldPolicy{
	// The other fields of a Volume are its other sources (persistentVolumeClaim, nfs,
	// csi, ...): a volume Shoal cannot provide, so the workload cannot run as written.
	"core/v1.Volume": {unsupported: "volume source %s is not supported by Shoal: use one of " + supportedVolumeSources},
}

// policyFor returns how the unhonoured field of Kubernetes type typ is reported.
func policyFor(typ, field string) fieldPolicy {
	if p, ok := fieldPolicies[k8sFieldKey{typ, field}]; ok {
		return p
	}
	return typePolicies[typ]
}

// featureSummaries is what one line about several warnings of a named feature
// says (Group.String), whether they came from fields or from skipped kinds.
var featureSummaries = map[string]string{
	serviceAcct: "not honoured by Shoal: " + noSATokens,
}

// kindFeatures groups a skipped kind with the fields of the same feature.
var kindFeatures = map[string]fieldPolicy{
	"ServiceAccount": {feature: serviceAcct, why: noSATokens},
}
