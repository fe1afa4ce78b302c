package spec

import "sort"

// Objects returns every object of the set, sorted by Key.
func (s *Set) Objects() []Object {
	out := make([]Object, 0, len(s.Namespaces)+len(s.Deployments)+len(s.Services)+len(s.ConfigMaps)+len(s.Secrets))
	s.eachObject(func(o Object) { out = append(out, o) })
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i].Key(), out[j].Key()) })
	return out
}

// Deployment returns the named Deployment, or nil.
func (s *Set) Deployment(namespace, name string) *Deployment {
	return find(s.Deployments, namespace, name)
}

// Service returns the named Service, or nil.
func (s *Set) Service(namespace, name string) *Service { return find(s.Services, namespace, name) }

// ConfigMap returns the named ConfigMap, or nil.
func (s *Set) ConfigMap(namespace, name string) *ConfigMap {
	return find(s.ConfigMaps, namespace, name)
}

// Secret returns the named Secret, or nil.
func (s *Set) Secret(namespace, name string) *Secret { return find(s.Secrets, namespace, name) }

// find does a binary search of a slice sorted by Key.
func find[T Object](objs []T, namespace, name string) T {
	i := sort.Search(len(objs), func(i int) bool {
		m := objs[i].Meta()
		return m.Namespace > namespace || m.Namespace == namespace && m.Name >= name
	})
	var zero T
	if i < len(objs) && objs[i].Meta().Namespace == namespace && objs[i].Meta().Name == name {
		return objs[i]
	}
	return zero
}

// sortByKey sorts a slice of one kind by namespace, then name.
func sortByKey[T Object](objs []T) {
	sort.Slice(objs, func(i, j int) bool { return keyLess(objs[i].Key(), objs[j].Key()) })
}

func keyLess(a, b Key) bool {
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// sortAll puts every slice of the set in Key order, as Set promises.
func (s *Set) sortAll() {
	sortByKey(s.Namespaces)
	sortByKey(s.Deployments)
	sortByKey(s.Services)
	sortByKey(s.ConfigMaps)
	sortByKey(s.Secrets)
}

// add appends o to the slice of its kind.
func (s *Set) add(o Object) {
	switch o := o.(type) {
	case *Namespace:
		s.Namespaces = append(s.Namespaces, o)
	case *Deployment:
		s.Deployments = append(s.Deployments, o)
	case *Service:
		s.Services = append(s.Services, o)
	case *ConfigMap:
		s.ConfigMaps = append(s.ConfigMaps, o)
	case *Secret:
		s.Secrets = append(s.Secrets, o)
	}
}

// eachObject calls fn for every object of the set, kind by kind, each kind in slice order.
func (s *Set) eachObject(fn func(Object)) {
	for _, o := range s.Namespaces {
		fn(o)
	}
	for _, o := range s.Deployments {
		fn(o)
	}
	for _, o := range s.Services {
		fn(o)
	}
	for _, o := range s.ConfigMaps {
		fn(o)
	}
	for _, o := range s.Secrets {
		fn(o)
	}
}
